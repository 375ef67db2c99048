"""stable-baselines3 in VLGOR envs: the vector-env adapter and a policy for `agents.evaluate`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

import agents
from agents.online import FILM_POLICY_KWARGS, FilmFeatures, Sb3Policy, Sb3VecEnv, sb3_vec_env
from vlgor_envs.language import instruction_encoder
from vlgor_envs.wrappers import EMBEDDING_KEY

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def encoder():  # type: ignore[no-untyped-def]
    return instruction_encoder("clevr")


def test_finished_episodes_restart_in_the_same_step_as_sb3_expects(encoder) -> None:  # type: ignore[no-untyped-def]
    env = sb3_vec_env("VLGOR-CLEVR-v0", num_envs=2, encoder=encoder, seed=5, max_episode_steps=2)
    first = env.reset()
    assert first["image"].shape == (2, 64, 64, 3) and first[EMBEDDING_KEY].shape == (2, encoder.dim)
    assert env.observation_space.contains({k: v[0] for k, v in first.items()})
    env.step_async(np.array([0, 1]))
    _, _, done, infos = env.step_wait()
    assert not done.any() and all("terminal_observation" not in i for i in infos)
    env.step_async(np.array([0, 1]))
    after, rewards, done, infos = env.step_wait()
    assert done.all() and rewards.dtype == np.float32
    # The episode ended by the step limit: its last frame is kept, a new episode has begun.
    assert all(i["TimeLimit.truncated"] for i in infos)
    last = infos[0]["terminal_observation"]["image"]
    assert not np.array_equal(last, after["image"][0])
    # Seeded: the same seed gives the same first observations.
    env.seed(5)
    np.testing.assert_array_equal(env.reset()["image"], first["image"])
    env.close()


def test_an_agent_trains_in_imagination_and_is_evaluated_in_the_real_env(encoder) -> None:  # type: ignore[no-untyped-def]
    env = sb3_vec_env("VLGOR-Imagined-CLEVR", num_envs=2, encoder=encoder, seed=0)
    assert isinstance(env, Sb3VecEnv)
    model = PPO("MultiInputPolicy", env, n_steps=8, batch_size=16, n_epochs=1, seed=0)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(16)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters(), strict=True))
    result = agents.evaluate(Sb3Policy(model, encoder), "clevr", "train", episodes=2, num_envs=2)
    assert len(result.successes) == 2 and all(0 < length <= 50 for length in result.lengths)
    env.close()


def test_the_film_keypoint_network_is_the_agents_features(encoder) -> None:  # type: ignore[no-untyped-def]
    env = sb3_vec_env("VLGOR-CLEVR-v0", num_envs=2, encoder=encoder, seed=0)
    model = PPO(
        "MultiInputPolicy", env, n_steps=8, batch_size=16, n_epochs=1, policy_kwargs=FILM_POLICY_KWARGS
    )
    features = model.policy.features_extractor
    assert isinstance(features, FilmFeatures) and features.features_dim == 256
    observations, _ = model.policy.obs_to_tensor(env.reset())
    assert features(observations).shape == (2, 256)
    film = features.encoder.trunk.film.affine.weight.detach().clone()
    model.learn(16)
    assert not torch.equal(film, features.encoder.trunk.film.affine.weight), "the FiLM layer trains"
    with pytest.raises(ValueError, match="channels-first image"):
        FilmFeatures(env.observation_space)  # (H, W, C): SB3 transposes it before the policy
    env.close()


def test_an_env_without_instructions_is_refused(encoder) -> None:  # type: ignore[no-untyped-def]
    import gymnasium as gym

    with pytest.raises(ValueError, match="image and instruction observations"):
        Sb3VecEnv(gym.make_vec("CartPole-v1", num_envs=1), encoder)


def test_the_imagination_benchmark_records_both_curves_beside_the_random_floor(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from benchmarks import sb3_imagination

    args = sb3_imagination.Args(steps=16, evaluations=2, num_envs=2, eval_episodes=2, results=tmp_path)
    sb3_imagination.main(args)
    record = json.loads((tmp_path / "sb3_imagination.json").read_text())
    figures = record["figures"]
    for kind in ("real", "imagined"):
        assert [steps for steps, _ in figures[kind]["curve"]] == [8, 16]
        assert all(success in (0.0, 0.5, 1.0) for _, success in figures[kind]["curve"])
    assert 0.0 <= figures["random"] <= 1.0
    real, imagined = figures["real"]["curve"][-1][1], figures["imagined"]["curve"][-1][1]
    assert figures["share_of_real"] == (imagined / real if real else None)
    assert (tmp_path / "sb3_imagination.png").stat().st_size > 0
    assert "trained in imagination" in sb3_imagination.readme_table(record)
