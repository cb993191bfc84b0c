"""The evaluation result: one writer and one reader of eval.json, used by every consumer."""

import json

import pytest

from stvae.cli import main
from stvae.errors import StvaeError
from stvae.grids import GridRun
from stvae.probes import Eq19
from stvae.reproduce import result_row
from stvae.result import EvalResult, Scores, read_result


def _eq19(d_score, static_set=(0,), temporal_set=(1,)):
    """A result of probes.disentanglement with the fields the readers take."""
    return Eq19.from_dict(
        {
            "d_score": d_score,
            "division": "model",
            "static_set": list(static_set),
            "temporal_set": list(temporal_set),
            "ceiling": 9.0,
            "ceiling_this_balance": 8.9,
            "static_acc_from_static": 0.6,
            "static_acc_from_temporal": 0.1,
            "temporal_acc_from_static": 0.12,
            "temporal_acc_from_temporal": 0.9,
            "static_chance": 0.1,
            "temporal_chance": 0.11,
        }
    )


def _result(attributes=None, options=None):
    names = attributes or ["static_labels"]
    targets = {
        p: {
            n: Scores(
                static_accuracy=0.5 + 0.1 * i,
                static_chance=0.1,
                disentanglement=_eq19(2.0 + i + (p == "rbf")),
                static_in_temporal={"centred": 0.2, "video_mean": 0.3} if p == "linear" else None,
            )
            for i, n in enumerate(names)
        }
        for p in ("linear", "rbf")
    }
    return EvalResult(
        model="hierarchical",
        features=4,
        static_features=2,
        beta=4.0,
        seed=0,
        data="held-out bouncing-mnist",
        videos=256,
        temporal_definition="travel-thirds",
        elbo={"reconstruction": 200.0, "kl": 5.0, "negative_elbo": 205.0},
        probe_sets={
            p: {
                "fit": "A",
                "score": "B",
                "fit_videos": 256,
                "score_videos": 256,
                "image_overlap": 0.0,
            }
            for p in ("linear", "rbf")
        },
        targets=targets,
        attributes=attributes,
        options=options or {"prior": "standard", "likelihood": "bernoulli"},
    )


@pytest.mark.parametrize("attributes", [None, ["body", "hair", "top"]])
def test_the_file_comes_back_whole_and_the_headline_is_the_attributes_mean(attributes):
    ev = _result(attributes)
    d = json.loads(json.dumps(ev.to_dict()))
    assert EvalResult.from_dict(d) == ev
    assert EvalResult.from_dict(d).to_dict() == d
    if attributes is None:  # one target: its keys at the top, as eval.json always had them
        assert d["d_score"] == 2.0 and d["d_score_rbf"] == 3.0
        assert d["disentanglement"]["static_set"] == [0]
        assert d["static_in_temporal"] == {"centred": 0.2, "video_mean": 0.3}
        assert "attributes" not in d
    else:  # several: per attribute, the headline their mean
        assert set(d["attributes"]) == set(attributes)
        assert d["attributes"]["hair"]["d_score"] == 3.0
        assert d["d_score"] == pytest.approx(3.0) and d["d_score_rbf"] == pytest.approx(4.0)
        assert d["static_accuracy"] == pytest.approx(0.6)
        assert "disentanglement" not in d
    assert ev.first("linear").disentanglement.d_score == 2.0


def test_eq19s_layout_is_the_one_committed_eval_json_files_hold():
    """The typed eq-19 result reads and writes the layout of the eval.json files already
    written (the paper-schedule run's, the sprites runs': baselines with chosen_on_fit,
    models with their own division), key for key."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    seen = 0

    def walk(node):
        nonlocal seen
        if isinstance(node, dict):
            if "d_score" in node and "ceiling" in node and "division" in node:
                assert Eq19.from_dict(node).to_dict() == node
                seen += 1
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in [*root.glob("docs/results/**/*eval.json"), *root.glob("pretrained/*/eval.json")]:
        walk(json.loads(path.read_text()))
    assert seen >= 20


def test_a_grid_row_reads_the_typed_result():
    ev = _result()
    row = result_row(GridRun("hierarchical", 4.0, 4, 0), ev, wall_s=12.0)
    assert row["d_score"] == 2.0 and row["d_score_rbf"] == 3.0
    assert row["static_set"] == [0] and row["temporal_set_rbf"] == [1]
    assert row["negative_elbo"] == 205.0 and row["static_in_temporal"]["centred"] == 0.2
    assert "variant" not in row and (row["static_features"], row["temporal_features"]) == (2, 2)
    assert row["options"] == {"prior": "standard", "likelihood": "bernoulli"}
    sprites = result_row(GridRun("hierarchical", 4.0, 4, 0), _result(["body", "hair"]), 1.0)
    assert sprites["attributes"]["hair"]["d_score"] == 3.0 and "static_set" not in sprites
    assert "static_in_temporal" not in sprites  # per attribute, not one row's column
    # a run of a size of its own: its variant, both factors' sizes and the kind's options
    full = GridRun("dsvae", 1.0, 288, 1, 256, (("posterior", "full"),))
    ev = _result(["body", "hair"], {"posterior": "full", "likelihood": "bernoulli"})
    row = result_row(full, ev, 1.0)
    assert row["name"] == "dsvae-full-s256-t32-beta1-seed1"
    assert row["variant"] == "dsvae-full-s256-t32" and row["options"]["posterior"] == "full"
    assert (row["static_features"], row["temporal_features"]) == (256, 32)
    assert "static_features" not in result_row(GridRun("vae", 1.0, 4, 0), _result(), 1.0)


def test_describe_names_every_section():
    text = _result().describe()
    assert "d-score (eq 19) 2.000" in text and "d-score (eq 19) 3.000" in text
    assert "static accuracy (Tables 2-3) 0.500" in text
    assert "centred per video 0.200" in text
    text = _result(["body", "hair"]).describe()
    assert "hair      d-score 3.000" in text and "mean over the attributes: d-score 2.500" in text


def test_a_head_that_fell_back_is_named_as_such():
    """The field's protocol as `evaluate` prints it: chance and the judge's fallback per
    head, and every head naming one class for most clips listed as fallen back."""
    cell = {"mean": 0.9, "sd": 0.0}
    low = {"mean": 0.2, "sd": 0.01}
    field = {
        "judge_accuracy": {"action": 1.0, "body": 1.0},
        "draws": 3,
        "static_from_prior": {"action_accuracy": cell},
        "dynamics_from_prior": {"body": cell},
        "chance": {"action": 0.13, "body": 0.2},
        "fallback": {
            "reconstruction": {"action": 0.14, "body": 0.97},
            "static_from_prior": {"action": low},
            "dynamics_from_prior": {"body": cell},
        },
    }
    ev = _result(["body"])
    ev.field = field
    text = ev.describe()
    assert "chance (the scored clips' commonest class) action 0.130, body 0.200" in text
    (line,) = [x for x in text.splitlines() if "fell back" in x]
    assert line.endswith("reconstructions body, dynamics from prior body")
    assert "reconstructions judged" not in text  # evaluations before it: no such line
    field["reconstruction"] = {"action": 0.98, "body": 0.5}
    assert "reconstructions judged (no prior draw): action 0.980, body 0.500" in ev.describe()
    del field["fallback"], field["chance"]  # evaluations before them: no such lines
    assert "fell back" not in ev.describe() and "chance (the scored" not in ev.describe()


def test_old_files_read_and_what_is_not_a_result_is_refused(tmp_path):
    old = _result().to_dict()
    del old["probe_sets"], old["skipped"], old["eval_version"]  # version 1 had neither
    del old["options"]  # nor had any file before runs of DSVAE's published size
    ev = EvalResult.from_dict(old)
    assert ev.eval_version == 1 and ev.probe_sets == {} and ev.d_score("linear") == 2.0
    assert ev.options == {}
    for bad in ([1, 2], {"model": "hierarchical"}, {**old, "features": "four"}):
        with pytest.raises(StvaeError, match="not an evaluation result"):
            EvalResult.from_dict(bad)
    path = tmp_path / "eval.json"
    path.write_text("{not json")
    with pytest.raises(StvaeError, match="not valid JSON"):
        read_result(path)


def test_figures_refuse_a_broken_eval_json_in_one_line(tmp_path, capsys):
    from stvae.data import DataConfig
    from stvae.model import ModelConfig
    from stvae.train import TrainConfig, train

    cfg = TrainConfig(
        model=ModelConfig(kind="vae", features=3),
        data=DataConfig(frames=4),
        steps=1,
        batch_videos=2,
    )
    train(cfg, tmp_path / "run")
    (tmp_path / "run" / "eval.json").write_text('{"model": "vae"}')
    assert main(["figures", str(tmp_path / "run"), "--out", str(tmp_path / "figs")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "eval.json: not an evaluation result" in err[0]
    assert not (tmp_path / "figs").exists()  # nothing half-written
