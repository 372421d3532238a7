"""The teacher's move vocabulary.

A move is a short cycle of key poses, one per beat. ``key(move, k, p)`` returns the DOF offsets
(degrees, relative to the neutral pose) for beat ``k`` of the cycle and which foot carries the
weight, scaled by the phrase parameters ``p`` (amplitude, arm height, side, lean). Key poses
land exactly on beats; the choreographer eases between them, so joint speed is lowest on the
beat, as dancers "hit" the beat.
"""

from __future__ import annotations

from dataclasses import dataclass

LEFT, RIGHT, BOTH, AIR = 0, 1, 2, 3


@dataclass(frozen=True)
class Params:
    amp: float  # 0.3..1.3, from phrase energy
    arm: float  # 0..1, from brightness (higher arms for brighter music)
    side: int  # +1 starts left, -1 starts right
    lean: float  # 0..1, from bass weight (lower, heavier stance for bass-heavy music)
    accent: float = 1.0  # this beat's accent (onset strength at the beat), 0.6..1.4


def _sides(p: Params, k: int) -> tuple[str, str]:
    """(active, other) side prefixes for beat ``k``: alternate every beat, starting with ``p.side``."""
    first = "l_" if p.side > 0 else "r_"
    second = "r_" if first == "l_" else "l_"
    return (first, second) if k % 2 == 0 else (second, first)


def _stance_of(prefix: str) -> int:
    return LEFT if prefix == "l_" else RIGHT


def _mirror(d: dict[str, float]) -> dict[str, float]:
    out = {}
    for k, v in d.items():
        if k.startswith("l_"):
            out["r_" + k[2:]] = v
        elif k.startswith("r_"):
            out["l_" + k[2:]] = v
        elif k in ("roll", "side", "twist", "tilt", "turn", "yaw"):
            out[k] = -v
        else:
            out[k] = v
    return out


def _both(d: dict[str, float], **side: float) -> dict[str, float]:
    for k, v in side.items():
        d["l_" + k] = v
        d["r_" + k] = v
    return d


def bounce(k: int, p: Params) -> tuple[dict, int]:
    a = p.amp * p.accent
    down = k % 2 == 0
    d = _both({}, knee=(28 if down else 6) * a, hip_flex=(18 if down else 3) * a, ankle=(-12 if down else 0) * a)
    d.update(lean=(10 if down else 2) * a + 8 * p.lean, nod=(8 if down else -3) * a)
    d = _both(d, sh_abd=15 + 20 * p.arm + 15 * a * down, elbow=30 + 60 * a * down, sh_flex=40 * a * down)
    return d, BOTH


def step_touch(k: int, p: Params) -> tuple[dict, int]:
    a = p.amp * p.accent
    if k % 2 == 1:
        d = _both({}, knee=18 * a, hip_flex=12 * a, elbow=85, sh_abd=20, sh_flex=45 * a)
        return d, BOTH
    act, oth = _sides(p, k // 2)
    d = {
        act + "hip_abd": 22 * a,
        act + "knee": 8,
        act + "ankle": 20,
        oth + "knee": 10 * a,
        "roll": 6 * a,
        "side": -5 * a,
    }
    d.update(
        {act + "sh_abd": 40 + 60 * p.arm, act + "elbow": 20, oth + "sh_abd": 15, oth + "elbow": 70, oth + "sh_flex": 30}
    )
    if act == "r_":
        d.update({"roll": -6 * a, "side": 5 * a})
    return d, _stance_of(oth)


def arm_wave(k: int, p: Params) -> tuple[dict, int]:
    a = p.amp * p.accent
    act, oth = _sides(p, k)
    hi = 110 + 60 * p.arm
    d = {
        act + "sh_abd": hi,
        act + "elbow": 25,
        act + "wrist": 25,
        oth + "sh_abd": 70 + 20 * p.arm,
        oth + "elbow": 60,
        oth + "wrist": -20,
    }
    d.update(
        {
            "side": (12 if act == "r_" else -12) * a,
            "roll": (5 if act == "l_" else -5) * a,
            "tilt": (8 if act == "r_" else -8) * a,
        }
    )
    d = _both(d, knee=12 * a, hip_flex=6)
    return d, BOTH


def punch(k: int, p: Params) -> tuple[dict, int]:
    a = p.amp * p.accent
    act, oth = _sides(p, k)
    d = {
        act + "sh_flex": 70 + 25 * p.arm,
        act + "sh_abd": 10,
        act + "elbow": 5,
        oth + "sh_flex": 25,
        oth + "elbow": 125,
        oth + "sh_abd": 20,
    }
    d["twist"] = (-20 if act == "l_" else 20) * a
    d = _both(d, knee=22 * a, hip_flex=14 * a, hip_abd=10)
    d["lean"] = 8 + 8 * p.lean
    return d, BOTH


def clap(k: int, p: Params) -> tuple[dict, int]:
    a = p.amp * p.accent
    if k % 2 == 0:
        d = _both({}, sh_flex=55 + 40 * p.arm, sh_twist=80, elbow=55, sh_abd=8, knee=16 * a, hip_flex=10 * a)
        d["nod"] = 10 * a
    else:
        d = _both({}, sh_abd=45 + 30 * p.arm, sh_flex=20, elbow=35, knee=5)
        d["nod"] = -5
    return d, BOTH


def hip_sway(k: int, p: Params) -> tuple[dict, int]:
    a = p.amp * p.accent
    act, oth = _sides(p, k)
    s = 1 if act == "l_" else -1
    d = {
        "roll": 12 * s * a,
        "side": -10 * s * a,
        "tilt": -4 * s * a,
        act + "knee": 4,
        oth + "knee": 22 * a,
        oth + "hip_flex": 12 * a,
        oth + "ankle": 10,
    }
    d = _both(d, sh_abd=25 + 25 * p.arm, elbow=80, sh_flex=25)
    d.update({act + "sh_abd": 50 + 40 * p.arm, act + "elbow": 40})
    return d, _stance_of(act)


def turn(k: int, p: Params) -> tuple[dict, int]:
    """A full pivot over four beats (yaw 90 degrees per beat), then four beats of groove."""
    a = p.amp * p.accent
    if k < 4:
        d = {
            "yaw": 90.0 * (k + 1) * p.side,
            "l_sh_abd": 60 + 40 * p.arm,
            "r_sh_abd": 60 + 40 * p.arm,
            "l_elbow": 40,
            "r_elbow": 40,
        }
        piv = "l_" if p.side > 0 else "r_"
        oth = "r_" if piv == "l_" else "l_"
        d.update({oth + "hip_flex": 25, oth + "knee": 45, oth + "ankle": 20, piv + "knee": 10 * a, "lean": 4})
        return d, _stance_of(piv)
    d, st = bounce(k, p)
    d["yaw"] = 360.0 * p.side
    return d, st


def kick(k: int, p: Params) -> tuple[dict, int]:
    a = p.amp * p.accent
    if k % 2 == 1:
        return _both({}, knee=20 * a, hip_flex=14 * a, sh_abd=30, elbow=60), BOTH
    act, oth = _sides(p, k // 2)
    d = {act + "hip_flex": 45 + 30 * a, act + "knee": 10, act + "ankle": 25, oth + "knee": 12, "lean": -5}
    d.update({"l_sh_abd": 70 + 30 * p.arm, "r_sh_abd": 70 + 30 * p.arm, "l_elbow": 20, "r_elbow": 20})
    return d, _stance_of(oth)


def body_roll(k: int, p: Params) -> tuple[dict, int]:
    a = p.amp * p.accent
    phase = k % 4
    lean = (28, 8, -14, 4)[phase] * a
    pitch = (-6, 10, 4, 0)[phase] * a
    knee = (10, 30, 18, 6)[phase] * a
    d = _both(
        {"lean": lean + 6 * p.lean, "pitch": pitch, "nod": (15, -5, -10, 0)[phase] * a},
        knee=knee,
        hip_flex=knee * 0.7,
        sh_abd=(20, 50, 30, 65)[phase] * a + 15 * p.arm,
        elbow=(70, 35, 100, 45)[phase],
        sh_flex=(25, 50, 5, 30)[phase] * a,
    )
    return d, BOTH


def shoulder_pop(k: int, p: Params) -> tuple[dict, int]:
    a = p.amp * p.accent
    act, oth = _sides(p, k)
    d = {act + "shrug": 25 * a, oth + "shrug": -5, "tilt": (-6 if act == "l_" else 6) * a}
    d = _both(d, sh_abd=20, elbow=85, sh_flex=30, knee=18 * a, hip_flex=10 * a)
    d.update({act + "elbow": 110, act + "sh_abd": 35 + 20 * p.arm, "twist": (12 if act == "l_" else -12) * a})
    return d, BOTH


def jump(k: int, p: Params) -> tuple[dict, int]:
    a = p.amp * p.accent
    phase = k % 4
    if phase in (0, 2):  # crouch (take-off / landing)
        d = _both({"lean": 22}, knee=55 * a, hip_flex=45 * a, ankle=-20 * a, sh_flex=-30, sh_abd=20, elbow=30)
        return d, BOTH
    if phase == 1:  # in the air, arms up
        d = _both({"hop": 0.12 * a, "lean": -3}, knee=15, hip_flex=10, ankle=25, sh_abd=130 + 40 * p.arm, elbow=10)
        return d, AIR
    return _both({}, knee=10, hip_flex=6, sh_abd=25, elbow=40), BOTH


def march(k: int, p: Params) -> tuple[dict, int]:
    a = p.amp * p.accent
    act, oth = _sides(p, k)
    d = {act + "hip_flex": 55 * a + 10, act + "knee": 75 * a + 10, act + "ankle": 15, oth + "knee": 8}
    d.update(
        {
            oth + "sh_flex": 45 * a,
            oth + "elbow": 90,
            act + "sh_flex": -25 * a,
            act + "elbow": 40,
            "l_sh_abd": 15,
            "r_sh_abd": 15,
        }
    )
    return d, _stance_of(oth)


def robot(k: int, p: Params) -> tuple[dict, int]:
    a = p.amp * p.accent
    act, oth = _sides(p, k)
    d = {
        act + "sh_abd": 85,
        act + "elbow": 90,
        act + "sh_twist": -80,
        oth + "sh_abd": 85,
        oth + "elbow": 90,
        oth + "sh_twist": 70,
    }
    d.update({"turn": (20 if act == "l_" else -20) * a, "twist": (10 if act == "l_" else -10) * a})
    d = _both(d, knee=10 * a)
    return d, BOTH


def disco_point(k: int, p: Params) -> tuple[dict, int]:
    a = p.amp * p.accent
    act, oth = _sides(p, k // 2)
    if k % 2 == 0:
        d = {
            act + "sh_abd": 130 + 30 * p.arm,
            act + "sh_flex": 30,
            act + "elbow": 0,
            oth + "sh_abd": 20,
            oth + "elbow": 80,
        }
        d.update(
            {
                "roll": (-8 if act == "l_" else 8) * a,
                "tilt": (8 if act == "l_" else -8) * a,
                "turn": (20 if act == "l_" else -20),
            }
        )
    else:
        d = {
            act + "sh_abd": 10,
            act + "sh_flex": 40,
            act + "sh_twist": 70,
            act + "elbow": 50,
            oth + "sh_abd": 20,
            oth + "elbow": 80,
        }
        d.update({"roll": (8 if act == "l_" else -8) * a, "lean": 8})
    d = _both(d, knee=12 * a)
    return d, BOTH


def side_lunge(k: int, p: Params) -> tuple[dict, int]:
    a = p.amp * p.accent
    if k % 2 == 1:
        return _both({}, knee=12 * a, sh_abd=30, elbow=45), BOTH
    act, oth = _sides(p, k // 2)
    d = {
        act + "hip_abd": 25 * a,
        act + "knee": 35 * a,
        act + "hip_flex": 25 * a,
        oth + "hip_abd": 15 * a,
        "side": (-12 if act == "l_" else 12) * a,
    }
    d.update({act + "sh_abd": 95 + 30 * p.arm, act + "elbow": 5, oth + "sh_abd": 40, oth + "elbow": 90})
    return d, _stance_of(oth)


# name -> (function, cycle length in beats)
MOVES: dict[str, tuple] = {
    "bounce": (bounce, 2),
    "step_touch": (step_touch, 4),
    "arm_wave": (arm_wave, 2),
    "punch": (punch, 2),
    "clap": (clap, 2),
    "hip_sway": (hip_sway, 2),
    "turn": (turn, 8),
    "kick": (kick, 4),
    "body_roll": (body_roll, 4),
    "shoulder_pop": (shoulder_pop, 2),
    "jump": (jump, 4),
    "march": (march, 2),
    "robot": (robot, 2),
    "disco_point": (disco_point, 4),
    "side_lunge": (side_lunge, 4),
}
MOVE_NAMES = tuple(MOVES)

# Affinity of each move to the phrase descriptors (energy, brightness, percussiveness, bass,
# tempo), all z-scored; the choreographer picks the best-scoring move for each phrase.
AFFINITY: dict[str, tuple[float, float, float, float, float]] = {
    "bounce": (0.0, -0.2, 0.3, 0.4, 0.0),
    "step_touch": (-0.3, 0.0, -0.2, 0.0, -0.2),
    "arm_wave": (-0.2, 0.8, -0.5, -0.3, -0.3),
    "punch": (0.6, 0.0, 0.8, 0.2, 0.3),
    "clap": (0.2, 0.6, 0.5, -0.3, 0.0),
    "hip_sway": (-0.5, -0.2, -0.3, 0.4, -0.4),
    "turn": (0.3, 0.3, -0.2, -0.2, 0.0),
    "kick": (0.7, 0.0, 0.4, 0.0, 0.5),
    "body_roll": (-0.3, -0.5, -0.4, 0.4, -0.4),
    "shoulder_pop": (0.0, -0.1, 0.6, 0.3, -0.2),
    "jump": (1.0, 0.2, 0.5, 0.0, 0.6),
    "march": (0.3, 0.0, 0.2, 0.0, 0.7),
    "robot": (0.0, 0.4, 0.7, -0.2, 0.0),
    "disco_point": (0.2, 0.7, 0.0, 0.0, 0.2),
    "side_lunge": (0.2, -0.2, 0.0, 0.5, -0.3),
}
