"""The door-unlock-open scene: the lock really holds the door, and the expert solves the task."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from metaworld.policies.sawyer_door_open_v3_policy import SawyerDoorOpenV3Policy

from vlgor_envs.metaworld.door_lock_open import (
    DOOR_FREE_ANGLE,
    LOCKED_ANGLE,
    UNLOCKED_ANGLE,
    DoorUnlockOpenExpert,
    SawyerDoorUnlockOpenEnvV3,
    compile_scene,
    door_angle_of,
    lock_angle_of,
    make_env,
)

# Meta-World's scripted policies warn about their own gains.
pytestmark = pytest.mark.filterwarnings("ignore:Constant\\(s\\) may be too high")

EPISODES, MAX_STEPS, MIN_SUCCESS_RATE = 10, 250, 0.8
#: A locked door may give by its contact slack, about 0.03 rad; this is well short of open.
HELD_SHUT = 0.05


def _pull_on_handle(env: SawyerDoorUnlockOpenEnvV3, obs: np.ndarray, steps: int) -> float:
    """Meta-World's door-open policy, then a full-force yank outward; the widest door angle."""
    policy, widest = SawyerDoorOpenV3Policy(), 0.0
    for _ in range(steps):
        obs, _, _, _, info = env.step(policy.get_action(obs.copy()))
        widest = max(widest, env.door_angle())
        assert not info["success"]
    for _ in range(40):
        obs, _, _, _, info = env.step(np.array([-1.0, -1.0, 0.0, 1.0], dtype=np.float32))
        widest = max(widest, env.door_angle())
        assert not info["success"]
    return widest


def test_scene_loads_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    model = compile_scene()
    assert {model.joint(i).name for i in range(model.njnt)} >= {"doorjoint", "lockjoint"}
    env = make_env(seed=0)
    obs, _ = env.reset()
    assert obs.shape == (39,)
    assert env.lock_angle() == pytest.approx(LOCKED_ANGLE)
    assert not env.lock_unlocked()
    assert env.door_angle() == pytest.approx(0.0, abs=1e-9)
    assert lock_angle_of(obs) == pytest.approx(env.lock_angle(), abs=1e-6)
    assert door_angle_of(obs) == pytest.approx(env.door_angle(), abs=1e-6)
    np.testing.assert_allclose(obs[4:7], env.data.geom("handle").xpos)
    np.testing.assert_allclose(obs[11:14], env.data.site("lockStartUnlock").xpos)
    env.close()


@pytest.mark.parametrize("lock", [LOCKED_ANGLE, 0.5])
def test_locked_door_does_not_open(lock: float) -> None:
    env = make_env(seed=3)
    env.reset()
    env.set_angles(door=0.0, lock=lock)
    obs, *_ = env.step(np.zeros(4, dtype=np.float32))
    widest = _pull_on_handle(env, obs, steps=120)
    assert widest < HELD_SHUT
    assert env.lock_angle() > UNLOCKED_ANGLE
    env.close()


def test_door_opens_once_the_robot_unlocks_it() -> None:
    env, expert = make_env(seed=1), DoorUnlockOpenExpert()
    obs, _ = env.reset()
    for _ in range(120):  # the unlock stage alone
        if expert.stage(obs) == 1:
            break
        obs, *_ = env.step(expert.get_action(obs))
    assert env.lock_unlocked()
    assert env.door_angle() < HELD_SHUT
    widest = 0.0
    for _ in range(200):
        obs, _, _, _, info = env.step(expert.get_action(obs))
        assert lock_angle_of(obs) == pytest.approx(env.lock_angle(), abs=1e-6)
        assert door_angle_of(obs) == pytest.approx(env.door_angle(), abs=1e-6)
        widest = max(widest, env.door_angle())
        if info["success"]:
            break
    assert info["success"] and info["unlocked"] and info["door_open"]
    assert widest > 10 * DOOR_FREE_ANGLE
    env.close()


def test_expert_unlocks_then_opens() -> None:
    expert, lengths = DoorUnlockOpenExpert(), []
    env = make_env()
    for seed in range(EPISODES):
        env.seed(seed)
        obs, _ = env.reset()
        for step in range(1, MAX_STEPS + 1):
            obs, _, _, _, info = env.step(expert.get_action(obs))
            if info["success"]:
                lengths.append(step)
                break
    env.close()
    assert len(lengths) / EPISODES >= MIN_SUCCESS_RATE, lengths


def test_seeded_resets_are_deterministic() -> None:
    expert = DoorUnlockOpenExpert()
    runs = []
    for seed in (7, 7, 8):
        env = make_env(seed)
        obs, _ = env.reset()
        trajectory = [obs]
        for _ in range(30):
            obs, *_ = env.step(expert.get_action(obs))
            trajectory.append(obs)
        runs.append(np.array(trajectory))
        env.close()
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.allclose(runs[0][0, 4:7], runs[2][0, 4:7])
