"""Headless training package: synthetic corpus (music synth, choreography teacher, SDGPip),
M2PEnc training, evaluation and export. Run ``python -m training <command> --help``."""
