"""``python -m stm2pe_core …``: the headless CLI."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
