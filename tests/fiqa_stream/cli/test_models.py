"""The model commands of the CLI (fiqa_stream/cli/models.py): dataset, eval, export, models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

from fiqa_stream.cli.main import main
from fiqa_stream.scorers.training.data import scored_images
from fiqa_stream.scorers.weights import SHIPPED


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    assert main(["dataset", str(root), "--labels", "ms-ssim", "--jitters", "0", "--samples", "3"]) == 0
    return root


def test_dataset_writes_the_splits_and_unlabelled_sets(data: Path) -> None:
    for part in ("train", "val", "test"):
        assert scored_images(data / part)
    assert any((data / "unlabelled-1").glob("*.png")) and any((data / "unlabelled-2").glob("*.png"))


def test_eval_reports_every_metric_and_the_cost_as_json(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "student", "--data", str(data / "test"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "fiqa-student-2" and result["count"] == len(scored_images(data / "test"))
    for key in ("srcc", "plcc", "krcc", "rmse", "score", "params", "gmacs", "cpu_ms_per_crop"):
        assert np.isfinite(result[key])


def test_export_writes_a_model_onnxruntime_runs(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    assert main(["export", "mspt", "--out", str(out)]) == 0
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.run(None, {"input": np.zeros((3, 3, 112, 112), np.float32)})[0].shape == (3,)


def test_export_int8_writes_an_integer_model_calibrated_on_a_crop_folder(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.int8.onnx"
    assert main(["export", "mspt", "--out", str(out), "--int8", str(data / "val")]) == 0
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert any(node.op_type == "QuantizeLinear" for node in onnx.load(str(out)).graph.node)
    assert session.run(None, {"input": np.zeros((3, 3, 112, 112), np.float32)})[0].shape == (3,)


def test_export_int8_names_a_missing_crop_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["export", "mspt", "--out", str(tmp_path / "m.onnx"), "--int8", str(tmp_path / "none")]) == 2
    assert f"--int8 {tmp_path / 'none'}: not a folder of aligned face crops" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "error"), [
    (["dataset", "{out}", "--jitters", "-1"], "dataset: --jitters must be at least 0 (got -1)"),
    (["dataset", "{out}", "--samples", "0"], "dataset: --samples must be at least 1 (got 0)"),
    (["dataset", "{out}", "--size", "8"], "dataset: --size must be at least 32 (got 8)"),
    (["train", "distill", "--data", "{out}", "--out", "{out}", "--epochs", "0"],
     "train: --epochs must be at least 1 (got 0)"),
    (["train", "distill", "--data", "{out}", "--out", "{out}", "--workers", "-2"],
     "train: --workers must be at least 0 (got -2)"),
])
def test_a_count_out_of_range_is_refused_before_any_work(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert main([a.format(out=out) for a in argv]) == 2
    assert capsys.readouterr().err.strip() == f"fiqa-stream: error: {error}"
    assert not out.exists()


@pytest.mark.parametrize("fold", ["5/4", "0/4", "1/1", "1-4", "a/b"])
def test_a_fold_that_is_not_k_of_n_is_refused_naming_the_flag(
    fold: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["dataset", str(tmp_path / "out"), "--fold", fold])
    assert exited.value.code == 2
    assert f"argument --fold: '{fold}' is not K/N with N at least 2 and K in 1..N" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_folds_split_the_utility_labels_only(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["dataset", str(tmp_path / "out"), "--labels", "ms-ssim", "--fold", "1/4"]) == 2
    assert "--fold splits the utility labels' identities" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("other", [["--labels", "ms-ssim"], ["--fold", "1/4"]])
def test_fusion_only_takes_the_recorded_split_and_refuses_another(
    other: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["dataset", str(tmp_path / "out"), "--fusion-only", *other]) == 2
    assert "--fusion-only takes the split of DIR/split.json" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("recorded", "expected"), [
    (None, "split.json: not found; expected the split.json of a utility set built by `fiqa-stream dataset`"),
    ('{"seed": 0, "train": [1]}', "split.json: expected a JSON object with seed, train, val and names"),
    ("[1, 2", "split.json: expected a JSON object with seed, train, val and names"),
])
def test_fusion_only_names_a_missing_or_unreadable_split_before_any_work(
    recorded: str | None, expected: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    if recorded is not None:
        (tmp_path / "split.json").write_text(recorded)
    assert main(["dataset", str(tmp_path), "--fusion-only"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"fiqa-stream: error: {tmp_path / expected}") and "\n" not in error
    assert not (tmp_path / "fusion").exists()


def test_models_lists_architectures_with_their_cost(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "student" in out and "fiqa-student-2" in out and "GMACs" in out


def test_models_lists_each_shipped_version_apart_from_its_architecture_with_every_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["models"]) == 0
    shipped_table = capsys.readouterr().out.split("shipped model", 1)[1].splitlines()[1:]
    rows = {line.split()[0]: line.split() for line in shipped_table if line.strip()}
    for name, model in SHIPPED.items():
        assert rows[name][1:4] == [model.version, model.architecture, str(model.input_size)]
    default = SHIPPED["student-utility"].version
    assert rows["student-utility"][-1] == f"{default}.int8.onnx"


def test_an_unknown_model_file_kind_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["export", str(tmp_path / "x.pt"), "--out", str(tmp_path / "x.onnx")]) == 2
    expected = "give one of student, student-utility, mspt-utility, ensemble-utility, ensemble, mspt or a .safetensors"
    assert expected in capsys.readouterr().err


def test_eval_on_a_utility_folder_names_a_model_that_is_not_shipped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from fiqa_stream.scorers.training.utility import DESCRIPTORS, SIGHTINGS_CSV

    (tmp_path / SIGHTINGS_CSV).write_text("image_name\n")
    (tmp_path / DESCRIPTORS).write_bytes(b"")
    assert main(["eval", "runs/x/model.safetensors", "--data", str(tmp_path), "--fit-fusion", "f.json"]) == 2
    assert "MODEL runs/x/model.safetensors: a held-out utility folder" in capsys.readouterr().err


def test_eval_refuses_a_folder_of_training_crops_before_loading_any_model(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import cv2

    from fiqa_stream.scorers.training.utility import DESCRIPTORS, SIGHTINGS_CSV

    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / "a.png"), rng.integers(0, 255, (112, 112, 3), np.uint8))
    (tmp_path / SIGHTINGS_CSV).write_text(
        "image_name,identity,photo,view,index,degradation,chain,severity,scale,genuine,impostor,utility\n"
        "a.png,1,0,0,0,clean,,0.0,1.0,0.1,0.8,0.99\n")
    np.savez(tmp_path / DESCRIPTORS, descriptors=rng.normal(size=(1, 128)), gallery=rng.normal(size=(2, 128)),
             gallery_identities=np.array([1, 2]))
    assert main(["eval", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'a.png'}: 112x112 px, but a held-out sighting is 224x224" in err
    assert "scorer fiqa" not in err
