"""agents: the paper's encoder, the algorithm registry, evaluation, training runs and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import d3rlpy
import minari
import numpy as np
import pytest
import torch
import tyro
from d3rlpy.dataset import MDPDataset
from d3rlpy.logging import NoopAdapterFactory
from d3rlpy.models.encoders import EncoderFactory
from d3rlpy.models.torch.imitators import compute_discrete_imitation_loss
from d3rlpy.models.torch.policies import CategoricalPolicy
from d3rlpy.optimizers.lr_schedulers import CosineAnnealingLRFactory
from d3rlpy.serializable_config import CONFIG_STORAGE
from torch import nn
from torch.nn import functional as F

import agents
from agents import (
    ALGORITHMS,
    ENCODER_TYPE,
    FILM_ENCODER_TYPE,
    FilmEncoderFactory,
    VisionLanguageEncoderFactory,
    build_dataset,
    d3rlpy_policy,
    evaluate,
    learner_defaults,
    make_algorithm,
    make_config,
    train,
)
from agents.commands import train_command
from agents.encoder import FiLM, random_shift, spatial_softmax
from agents.train import TrainConfig
from vlgor_envs.clevr.expert import ClevrExpert
from vlgor_envs.data import CollectConfig, collect
from vlgor_envs.data.d3rlpy_bridge import MixedDataset, instruction_examples, to_d3rlpy
from vlgor_envs.language import TextEncoder, default_text_encoder, instruction_encoder

REAL_ID = "vlgor/clevr/real-train-v0"
NOISY_ID = "vlgor/clevr/imagined-noisy-v0"
SHAPE = [(3, 64, 64), (384,)]
#: Tiny runs: few steps, small batches, two evaluation episodes.
TINY: dict[str, Any] = {"steps": 4, "batch_size": 8, "progress": False}


def _tiny(run_dir: Path, *datasets: str, **fields: Any) -> TrainConfig:
    """A 4-step run's config on ``datasets`` (the real one by default; a second is imagined)."""
    real, *imagined = datasets or (REAL_ID,)
    return TrainConfig(run_dir=run_dir, real=(real,), imagined=tuple(imagined), **TINY, **fields)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)  # the machine's other core is busy; also keeps runs bitwise equal


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return default_text_encoder()


@pytest.fixture(scope="module")
def real(minari_root: Path) -> minari.MinariDataset:
    return collect(CollectConfig("clevr", "train", 4, 0, progress=False))


@pytest.fixture(scope="module")
def noisy(minari_root: Path) -> minari.MinariDataset:
    """Random actions, standing in for an imagined dataset (a second source of another size)."""
    return collect(CollectConfig("clevr", "train", 3, 100, noise=1.0, dataset_id=NOISY_ID, progress=False))


@pytest.fixture(scope="module")
def observations(real: minari.MinariDataset, encoder: TextEncoder) -> list[np.ndarray]:
    episode = to_d3rlpy(real, encoder).episodes[0]
    return [episode.observations[0][:5].copy(), np.ascontiguousarray(episode.observations[1][:5])]


def _q_values(algo: Any, observations: list[np.ndarray]) -> np.ndarray:
    actions = np.arange(len(observations[0])) % 40
    return np.asarray(algo.predict_value(observations, actions))


@pytest.fixture(scope="module")
def run(
    tmp_path_factory: pytest.TempPathFactory,
    real: minari.MinariDataset,
    noisy: minari.MinariDataset,
    encoder: TextEncoder,
) -> agents.TrainResult:
    """DiscreteCQL on real + 'imagined' data with checkpoints and a learning curve."""
    config = _tiny(
        tmp_path_factory.mktemp("runs") / "cql",
        REAL_ID,
        NOISY_ID,
        algo="DiscreteCQL",
        seed=3,
        eval_split="counterfactual",
        eval_every=2,
        eval_episodes=2,
        save_every=2,
    )
    return train(config, text_encoder=encoder)


# ----------------------------------------------------------------------------- encoder


def test_encoder_is_the_papers_network() -> None:
    torch.manual_seed(0)
    factory = VisionLanguageEncoderFactory()
    network = factory.create(SHAPE).eval()  # acting: no training shifts
    convs = [m for m in network.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (3, 32, (8, 8), (4, 4)),
        (32, 64, (4, 4), (2, 2)),
        (64, 64, (3, 3), (1, 1)),
    ]
    text_linears = [m for m in network.trunk.text if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in text_linears] == [(384, 512), (512, 256)]
    assert isinstance(network.trunk.text[-1], nn.LayerNorm) and isinstance(
        network.trunk.vision[-1], nn.LayerNorm
    )
    assert network.trunk.vision[0].out_features == 256
    assert (network.fusion[0].in_features, network.fusion[0].out_features) == (512, 512)

    # d3rlpy hands uint8 pixels over as floats in 0..255; the encoder scales them itself
    image = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    embedding = torch.randn(2, 384)
    features = network([image.float(), embedding])
    assert features.shape == (2, 512) and (features >= 0).all()  # fused through a ReLU
    torch.testing.assert_close(network([image, embedding]), features)
    assert not torch.allclose(network([image.float() / 255.0, embedding]), features)

    # saved configs come back with lists for shapes
    small = factory.create([[3, 48, 48], [16]])
    assert small([torch.zeros(1, 3, 48, 48), torch.zeros(1, 16)]).shape == (1, 512)
    with pytest.raises(ValueError, match="tuple observations"):
        factory.create((3, 64, 64))
    with pytest.raises(ValueError, match="too small"):
        factory.create([(3, 32, 32), (384,)])


def test_training_images_are_shifted_and_acting_ones_are_not() -> None:
    torch.manual_seed(0)
    images = torch.rand(6, 3, 64, 64)
    state = torch.get_rng_state()
    shifted = random_shift(images, 4)
    assert shifted.shape == images.shape
    offsets = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)]
    for one, original in zip(shifted, images, strict=True):
        # away from the padded border, each image is its original moved by one offset
        assert any(
            torch.equal(one[:, 4:60, 4:60], original[:, 4 + dy : 60 + dy, 4 + dx : 60 + dx])
            for dy, dx in offsets
        )
    assert not torch.equal(shifted, images)
    assert torch.equal(random_shift(images, 0), images)
    # Borders too: each image is a crop of its edge-padded copy at the offsets drawn in order.
    torch.set_rng_state(state)
    dy, dx = (torch.randint(0, 9, (6, 1, 1)).view(-1) for _ in range(2))
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4), mode="replicate")
    expected = torch.stack([p[:, y : y + 64, x : x + 64] for p, y, x in zip(padded, dy, dx, strict=True)])
    assert torch.equal(shifted, expected)
    pixels = (images * 255).to(torch.uint8)
    torch.set_rng_state(state)
    assert torch.equal(random_shift(pixels, 4), (expected * 255).to(torch.uint8))  # any dtype

    observation = [images * 255, torch.randn(6, 384)]
    network = VisionLanguageEncoderFactory().create(SHAPE)
    network.train()
    torch.manual_seed(1)
    first = network(observation)
    torch.manual_seed(1)
    torch.testing.assert_close(network(observation), first)  # seeded, so reproducible
    assert not torch.allclose(network(observation), first)
    network.eval()
    torch.testing.assert_close(network(observation), network(observation))
    unshifted = VisionLanguageEncoderFactory(random_shift=0).create(SHAPE).train()
    torch.testing.assert_close(unshifted(observation), unshifted(observation))
    with pytest.raises(ValueError, match="random_shift must be >= 0"):
        VisionLanguageEncoderFactory(random_shift=-1)


def test_encoder_with_action_shapes() -> None:
    factory = VisionLanguageEncoderFactory(feature_size=64)
    observation = [torch.rand(3, 3, 64, 64) * 255, torch.randn(3, 384)]
    continuous = factory.create_with_action(SHAPE, 4)
    assert continuous(observation, torch.rand(3, 4) * 2 - 1).shape == (3, 64)
    discrete = factory.create_with_action(SHAPE, 40, discrete_action=True)
    assert discrete.fusion[0].in_features == 512 + 40  # one-hot actions join the fusion layer
    assert discrete(observation, torch.tensor([[0], [7], [39]])).shape == (3, 64)
    # different actions, different features: the action is really used
    one, other = discrete(observation, torch.zeros(3, 1)), discrete(observation, torch.ones(3, 1))
    assert not torch.allclose(one, other)


def test_encoder_is_registered_with_d3rlpy() -> None:
    assert CONFIG_STORAGE[EncoderFactory].config_list[ENCODER_TYPE] is VisionLanguageEncoderFactory
    assert CONFIG_STORAGE[EncoderFactory].config_list[FILM_ENCODER_TYPE] is FilmEncoderFactory


def test_spatial_softmax_finds_a_lit_pixel() -> None:
    maps = torch.zeros(1, 2, 5, 9)
    maps[0, 0, 4, 0] = 100.0  # bottom-left corner
    maps[0, 1, 2, 4] = 100.0  # the centre
    np.testing.assert_allclose(spatial_softmax(maps).numpy(), [[-1.0, 1.0, 0.0, 0.0]], atol=1e-4)


def test_film_starts_as_the_identity_and_is_conditioned() -> None:
    film = FiLM(4, 3)
    x, condition = torch.randn(2, 3, 5, 5), torch.randn(2, 4)
    torch.testing.assert_close(film(x, condition), x)
    nn.init.normal_(film.affine.weight)
    assert not torch.allclose(film(x, condition), film(x, -condition))


def test_film_encoder_shapes_and_instruction_use() -> None:
    torch.manual_seed(0)
    factory = FilmEncoderFactory(feature_size=64)
    shape = [(3, 64, 64), (2304,)]
    network = factory.create(shape).eval()
    image = torch.rand(3, 3, 64, 64) * 255
    text = torch.randn(3, 2304)
    assert network([image, text]).shape == (3, 64)
    # 32 keypoints (x, y) from a 32x32 map beside the 128-wide text feature.
    assert network.trunk.output_size == 2 * 32 + 128
    nn.init.normal_(network.trunk.film.affine.weight)
    assert not torch.allclose(network([image, text]), network([image, -text]))
    discrete = factory.create_with_action(shape, 40, discrete_action=True)
    assert discrete([image, text], torch.tensor([[0], [7], [39]])).shape == (3, 64)
    with pytest.raises(ValueError, match="too small for the FiLM encoder"):
        factory.create([(3, 2, 2), (8,)])


def test_learner_defaults_per_env() -> None:
    clevr = learner_defaults("VLGOR-CLEVR-v0")
    assert clevr.encoder is FilmEncoderFactory and clevr.learning_rate == 1e-3
    paper = learner_defaults("VLGOR-MetaWorld-v0")
    assert paper.encoder is VisionLanguageEncoderFactory and paper.learning_rate == 3e-4


def test_continuous_learners_fit_with_the_encoder() -> None:
    """A TD3+BC actor and its Q(s, a) critics built and fitted on tuple observations."""
    rng = np.random.default_rng(0)
    steps = 12
    dataset = MDPDataset(
        observations=[
            rng.integers(0, 256, (steps, 3, 64, 64), dtype=np.uint8),
            rng.standard_normal((steps, 384)).astype(np.float32),
        ],
        actions=rng.uniform(-1, 1, (steps, 4)).astype(np.float32),
        rewards=rng.standard_normal(steps).astype(np.float32),
        terminals=np.eye(1, steps, steps - 1, dtype=np.float32)[0],
    )
    algo = make_algorithm("TD3PlusBC", "continuous", steps=2, batch_size=4)
    algo.fit(
        dataset, n_steps=2, n_steps_per_epoch=2, logger_adapter=NoopAdapterFactory(), show_progress=False
    )
    observation = [dataset.episodes[0].observations[0][:3], dataset.episodes[0].observations[1][:3]]
    actions = algo.predict(observation)
    assert actions.shape == (3, 4) and (np.abs(actions) <= 1).all()
    assert algo.predict_value(observation, actions).shape == (3,)


# ----------------------------------------------------------------------------- registry


def test_registry_names_and_errors() -> None:
    assert {"DiscreteBC", "DiscreteCQL", "DQN", "DoubleDQN", "DiscreteSAC", "NFQ"} <= set(
        ALGORITHMS["discrete"]
    )
    assert {"BC", "TD3PlusBC", "CQL", "IQL", "AWAC"} <= set(ALGORITHMS["continuous"])
    assert not set(ALGORITHMS["discrete"]) & set(ALGORITHMS["continuous"])
    with pytest.raises(ValueError, match=r"unknown algorithm 'Nope'.*DiscreteBC"):
        make_config("Nope", "discrete", 10)
    with pytest.raises(ValueError, match=r"CQL learns continuous actions.*DiscreteCQL"):
        make_config("CQL", "discrete", 10)
    with pytest.raises(ValueError, match=r"DiscreteBC learns discrete actions.*TD3PlusBC"):
        make_config("DiscreteBC", "continuous", 10)
    with pytest.raises(ValueError, match=r"no field\(s\) \['alhpa'\]"):
        make_config("DiscreteCQL", "discrete", 10, alhpa=1.0)
    with pytest.raises(ValueError, match="continuous-action learner"):
        make_config(d3rlpy.algos.BCConfig(), "discrete", 10)


def test_user_config_is_used_as_given() -> None:
    config = d3rlpy.algos.DiscreteBCConfig(batch_size=3, learning_rate=1e-2)
    algo = make_algorithm(config, "discrete", steps=10)
    assert algo.config is config
    assert make_config("DiscreteBCConfig", "discrete", 10).batch_size == 128  # the class name works too


def test_paper_defaults_cosine_schedule_and_encoders() -> None:
    cql = make_config("DiscreteCQL", "discrete", steps=1000)
    assert isinstance(cql, d3rlpy.algos.DiscreteCQLConfig)
    assert (cql.batch_size, cql.learning_rate, cql.alpha) == (128, 3e-4, 10.0)
    schedule = cql.optim_factory.lr_scheduler_factory
    assert isinstance(schedule, CosineAnnealingLRFactory)
    assert (schedule.T_max, schedule.eta_min) == (1000, 1e-6)
    assert isinstance(cql.encoder_factory, VisionLanguageEncoderFactory)
    assert make_config("DiscreteCQL", "discrete", 10, alpha=2.0).alpha == 2.0  # a caller's value wins
    # The target network syncs 10 times in a short run, at d3rlpy's 8,000-update period in a long one.
    assert cql.target_update_interval == 100
    assert make_config("DoubleDQN", "discrete", steps=200_000).target_update_interval == 8000
    assert make_config("DiscreteCQL", "discrete", 1000, target_update_interval=7).target_update_interval == 7

    # DiscreteBC trains on the paper's loss (Eq. 2): the log-likelihood, with no logit penalty.
    bc = make_config("DiscreteBC", "discrete", steps=1000)
    policy = CategoricalPolicy(nn.Identity(), hidden_size=4, action_size=4)
    with torch.no_grad():
        policy._fc.weight.copy_(10 * torch.eye(4))
        policy._fc.bias.zero_()
    states, actions = torch.eye(4), torch.arange(4)  # a confident policy that is always right
    loss = compute_discrete_imitation_loss(policy, states, actions, beta=bc.beta)
    assert loss.loss.item() == pytest.approx(F.cross_entropy(10 * states, actions).item())
    assert loss.loss.item() < 1e-3
    # d3rlpy's default penalises its log-probabilities so much that it would rank it below chance.
    uniform = compute_discrete_imitation_loss(policy, 0 * states, actions, beta=0.5)
    assert compute_discrete_imitation_loss(policy, states, actions, beta=0.5).loss > uniform.loss

    td3 = make_config("TD3PlusBC", "continuous", steps=1000)
    assert td3.actor_learning_rate == td3.critic_learning_rate == 3e-4  # d3rlpy's actor default is 1e-4
    # the actor steps every second update, so its schedule is half as long
    assert td3.actor_optim_factory.lr_scheduler_factory.T_max == 500
    assert td3.critic_optim_factory.lr_scheduler_factory.T_max == 1000
    iql = make_config("IQL", "continuous", steps=10)
    for field in ("actor_encoder_factory", "critic_encoder_factory", "value_encoder_factory"):
        assert isinstance(getattr(iql, field), VisionLanguageEncoderFactory), field
    # A caller's encoder goes to every network.
    unshifted = VisionLanguageEncoderFactory(random_shift=0)
    iql = make_config("IQL", "continuous", steps=10, network_encoder=unshifted)
    for field in ("actor_encoder_factory", "critic_encoder_factory", "value_encoder_factory"):
        assert getattr(iql, field) is unshifted, field


def test_clevr_learning_rate_stays_constant(run: agents.TrainResult) -> None:
    # CLEVR's default: Adam at 1e-3 throughout (the paper's cosine is tested on make_config).
    optimizer = run.algo.impl.q_function_optim
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)


# ----------------------------------------------------------------------------- evaluation


def test_evaluate_expert_succeeds_and_random_does_not() -> None:
    expert = ClevrExpert()
    scripted = evaluate(lambda _, info: expert.act(info), "clevr", "train", 6, seed=0, pass_info=True)
    assert scripted.success_rate == 1.0 and scripted.episodes == 6
    assert scripted.env_id == "VLGOR-CLEVR-v0" and max(scripted.lengths) < 50
    assert all(r > 0 for r in scripted.returns)
    rng = np.random.default_rng(0)
    random = evaluate(lambda _: int(rng.integers(40)), "VLGOR-CLEVR-v0", "train", 6, seed=0)
    assert random.success_rate < 0.3
    # same seeds, same goals: episode i is reset with seed + i whatever the policy
    assert random.instructions == scripted.instructions and len(set(scripted.instructions)) > 1
    assert json.loads(json.dumps(random.to_json()))["success_rate"] == random.success_rate
    with pytest.raises(ValueError, match="episodes"):
        evaluate(lambda _: 0, "clevr", "train", 0)


def test_d3rlpy_policy_feeds_the_training_tuple(
    run: agents.TrainResult, real: minari.MinariDataset, encoder: TextEncoder
) -> None:
    policy = d3rlpy_policy(run.algo)  # no env named: the sentence embedding, as the run had
    episode = next(real.iterate_episodes())
    observation = {
        "image": episode.observations["image"][0],
        "instruction": episode.observations["instruction"][0],
    }
    action = policy(observation)
    assert isinstance(action, int) and 0 <= action < 40
    buffer = to_d3rlpy(real, encoder)
    expected = run.algo.predict(
        [buffer.episodes[0].observations[0][:1], buffer.episodes[0].observations[1][:1]]
    )
    assert action == int(expected[0])
    # CLEVR's own feature (parsed roles) does not fit this learner, and says so.
    with pytest.raises(ValueError, match="takes 384-wide instruction features but RoleEncoder"):
        d3rlpy_policy(run.algo, env="clevr")


class _CountingPolicy(agents.D3rlpyPolicy):
    """The d3rlpy adapter, counting its batched calls."""

    calls = 0

    def act_batch(self, observations: Any) -> list[Any]:
        self.calls += 1
        return super().act_batch(observations)


def test_vectorised_evaluation_ends_as_the_sequential_one(run: agents.TrainResult) -> None:
    sequential = evaluate(d3rlpy_policy(run.algo), "clevr", "counterfactual", 9, seed=7)
    batched = _CountingPolicy(run.algo)
    vectorised = evaluate(batched, "clevr", "counterfactual", 9, seed=7, num_envs=4)
    assert vectorised == sequential
    # One predict per step on the batch of running envs, not one per env and step.
    assert batched.calls < sum(sequential.lengths) / 2
    # A plain callable steps the vector of envs too, one call per observation.
    rng_free = evaluate(lambda o: int(o["image"].sum()) % 40, "clevr", "hard", 5, seed=3)
    assert evaluate(lambda o: int(o["image"].sum()) % 40, "clevr", "hard", 5, seed=3, num_envs=3) == rng_free
    with pytest.raises(ValueError, match="num_envs"):
        evaluate(lambda _: 0, "clevr", "train", 1, num_envs=0)


def test_evaluation_counts_successes_per_goal_kind() -> None:
    expert = ClevrExpert()
    result = evaluate(lambda _, info: expert.act(info), "clevr", "counterfactual", 12, seed=0, pass_info=True)
    assert set(result.kinds) == {"motion", "relation"}
    by_kind = result.by_kind()
    assert sum(n for _, n in by_kind.values()) == 12
    assert sum(s for s, _ in by_kind.values()) == sum(result.successes)
    hard = evaluate(lambda _: 0, "clevr", "hard", 12, seed=0)
    assert (
        set(hard.kinds) <= {"two_relations", "three_relations", "line_up", "gather"}
        and len(set(hard.kinds)) > 1
    )


# ----------------------------------------------------------------------------- training


def test_mixed_batches_keep_the_ratio(
    real: minari.MinariDataset, noisy: minari.MinariDataset, encoder: TextEncoder
) -> None:
    mixed = build_dataset([REAL_ID], [noisy], ratio=(1.0, 3.0), text_encoder=encoder)
    assert isinstance(mixed, MixedDataset) and mixed.sources == (REAL_ID, NOISY_ID)
    for _ in range(10):
        assert np.bincount(mixed.source_of(mixed.sample_transition_indices(16)), minlength=2).tolist() == [
            4,
            12,
        ]
    # two real datasets share the real half by size, so real transitions stay uniform
    both = build_dataset([REAL_ID, noisy], [REAL_ID], ratio=(1.0, 1.0), text_encoder=encoder)
    real_steps, noisy_steps = real.total_steps, noisy.total_steps
    np.testing.assert_allclose(
        both.weights, [real_steps / (real_steps + noisy_steps), noisy_steps / (real_steps + noisy_steps), 1.0]
    )
    assert not isinstance(build_dataset([REAL_ID], text_encoder=encoder), MixedDataset)


def test_train_writes_the_run_folder(run: agents.TrainResult) -> None:
    folder = run.run_dir
    names = {p.name for p in folder.iterdir()}
    assert {
        "config.json",
        "d3rlpy",
        "model.d3",
        "model_2.d3",
        "model_4.d3",
        "metrics.json",
        "metrics.csv",
    } <= names
    assert not [n for n in names if n.endswith(".tmp")]
    assert run.model == folder / "model.d3" and run.checkpoints == (
        folder / "model_2.d3",
        folder / "model_4.d3",
    )
    config = json.loads((folder / "config.json").read_text())
    assert config["algo"] == "DiscreteCQL" and config["seed"] == 3 and config["steps"] == 4
    assert [s["per_batch"] for s in config["sources"]] == [4, 4]  # 1:1 of a batch of 8
    assert config["algorithm_config"]["params"]["encoder_factory"]["type"] == FILM_ENCODER_TYPE
    # d3rlpy's own logs, with the evaluation at each epoch end
    assert (folder / "d3rlpy" / "params.json").is_file() and (folder / "d3rlpy" / "loss.csv").is_file()
    logged = np.loadtxt(folder / "d3rlpy" / "success.csv", delimiter=",", ndmin=2)
    assert logged[:, 1].tolist() == [2, 4]
    metrics = json.loads((folder / "metrics.json").read_text())
    assert [p["step"] for p in metrics["curve"]] == [2, 4] and metrics["split"] == "counterfactual"
    assert [r for _, r in run.curve] == logged[:, 2].tolist()
    assert run.evaluation is not None and run.evaluation.episodes == 2
    assert (folder / "metrics.csv").read_text().splitlines()[0] == "step,success_rate"
    # Trained with the caller's text encoder: no feature to rebuild, and evaluation is told so.
    with pytest.raises(FileNotFoundError, match="pass the text_encoder the run was trained with"):
        agents.run_text_encoder(folder)


def test_saved_learner_loads_in_a_fresh_process(
    run: agents.TrainResult, observations: list[np.ndarray], tmp_path: Path
) -> None:
    np.savez(tmp_path / "obs.npz", image=observations[0], embedding=observations[1])
    script = textwrap.dedent(
        f"""
        import numpy as np, torch, d3rlpy
        torch.set_num_threads(1)
        import agents  # registers the encoder factory
        algo = d3rlpy.load_learnable({str(run.model)!r})
        data = np.load({str(tmp_path / "obs.npz")!r})
        obs = [data["image"], data["embedding"]]
        np.save({str(tmp_path / "actions.npy")!r}, algo.predict(obs))
        np.save({str(tmp_path / "values.npy")!r}, algo.predict_value(obs, np.arange(len(obs[0])) % 40))
        """
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    np.testing.assert_array_equal(np.load(tmp_path / "actions.npy"), run.algo.predict(observations))
    np.testing.assert_array_equal(np.load(tmp_path / "values.npy"), _q_values(run.algo, observations))


def test_same_seed_same_learner_and_existing_run_dir(
    run: agents.TrainResult, observations: list[np.ndarray], encoder: TextEncoder, tmp_path: Path
) -> None:
    # no evaluation and no checkpoints this time: neither may disturb training
    again = train(
        _tiny(tmp_path / "again", REAL_ID, NOISY_ID, algo="DiscreteCQL", seed=3), text_encoder=encoder
    )
    np.testing.assert_array_equal(_q_values(again.algo, observations), _q_values(run.algo, observations))

    with pytest.raises(FileExistsError, match="not empty"):
        train(_tiny(again.run_dir, algo="DiscreteCQL"), text_encoder=encoder)
    other = train(
        _tiny(again.run_dir, REAL_ID, NOISY_ID, algo="DiscreteCQL", seed=4, overwrite=True),
        text_encoder=encoder,
    )
    assert not np.array_equal(_q_values(other.algo, observations), _q_values(run.algo, observations))
    assert json.loads((again.run_dir / "config.json").read_text())["seed"] == 4

    stranger = tmp_path / "not-a-run"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a vlgor run"):
        train(_tiny(stranger, overwrite=True))
    assert (stranger / "notes.txt").read_text() == "keep me"


def test_train_rejects_bad_arguments(tmp_path: Path, real: minari.MinariDataset) -> None:
    with pytest.raises(ValueError, match="must divide steps"):
        train(_tiny(tmp_path / "a", eval_split="hard", eval_every=3))
    with pytest.raises(ValueError, match="learns continuous actions"):
        train(_tiny(tmp_path / "b", algo="TD3PlusBC"))
    with pytest.raises(ValueError, match="cannot evaluate them in VLGOR-MetaWorld-v0"):
        train(_tiny(tmp_path / "c", eval_split="train", env="metaworld"))
    with pytest.raises(FileNotFoundError, match="no dataset 'vlgor/clevr/nope-v0'"):
        train(_tiny(tmp_path / "d", "vlgor/clevr/nope-v0"))
    assert not list(tmp_path.iterdir())  # a failed start writes nothing


# ----------------------------------------------------------------------------- command line


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    program = "import tyro; from agents.commands import train_command; tyro.cli(train_command)"
    return subprocess.run(
        [sys.executable, "-c", program, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        check=False,
    )


def test_cli_trains_at_tiny_size(
    real: minari.MinariDataset, noisy: minari.MinariDataset, tmp_path: Path
) -> None:
    run_dir = tmp_path / "cli"
    args = ["--run-dir", str(run_dir), "--env", "clevr", "--algo", "DiscreteBC", "--real", REAL_ID]
    tiny = ["--steps", "2", "--batch-size", "8", "--threads", "1", "--no-progress"]
    result = _cli(
        *args,
        "--imagined",
        NOISY_ID,
        *tiny,
        "--eval-split",
        "counterfactual",
        "--eval-episodes",
        "1",
        "--save-every",
        "1",
        "--algo-kwargs",
        "beta=0.25",
        "--random-shift",
        "2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        f"model: {run_dir / 'model.d3'}" in result.stdout
        and "success rate on counterfactual" in result.stdout
    )
    assert {"model.d3", "model_1.d3", "model_2.d3", "metrics.json"} <= {p.name for p in run_dir.iterdir()}
    config = json.loads((run_dir / "config.json").read_text())
    params = config["algorithm_config"]["params"]
    assert config["imagined"] == [NOISY_ID] and params["beta"] == 0.25
    # CLEVR's default network (FiLM keypoints) and rate, with the shift asked for.
    assert params["encoder_factory"]["type"] == FILM_ENCODER_TYPE and params["learning_rate"] == 1e-3
    assert params["encoder_factory"]["params"]["random_shift"] == 2
    # The instruction feature was fitted on both datasets' instructions, and the run rebuilds it.
    examples = instruction_examples([real, noisy])
    saved = json.loads((run_dir / "instruction_feature.json").read_text())
    assert saved["env"] == "VLGOR-CLEVR-v0" and len(saved["examples"]) == len(examples)
    rebuilt, fitted = agents.run_text_encoder(run_dir), instruction_encoder("clevr", examples)
    instruction = examples[0][0]
    np.testing.assert_array_equal(rebuilt.encode(instruction), fitted.encode(instruction))
    learner = d3rlpy.load_learnable(str(run_dir / "model.d3"))
    assert agents.d3rlpy_policy(learner, rebuilt).encoder is rebuilt

    # The same run_dir again is refused (in this process: a second start costs 10 s of imports).
    with pytest.raises(FileExistsError, match=r"not empty.*--overwrite"):
        tyro.cli(train_command, args=[*args, "--steps", "2", "--no-progress"])
