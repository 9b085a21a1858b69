"""Judging quality scores against recognition utility: ERC, best-of-8, and `fiqa-stream eval` on held-out faces."""

from __future__ import annotations

import importlib.util
import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fiqa_stream.scorers.training.utility import utility
from fiqa_stream.scorers.training.utility_eval import (
    HeldOut,
    degradation_oracle,
    erc,
    hit_at_2,
    paired_by_person,
    paired_person_bootstrap,
    per_person,
    person_intervals,
    person_pair_table,
    relabelled,
    report,
    single_photo_people,
    strength_ceiling,
    subset,
    within_person,
    worst_degradation_fusion,
)

needs_dlib = pytest.mark.skipif(
    importlib.util.find_spec("dlib") is None or importlib.util.find_spec("face_recognition_models") is None,
    reason="recognition-utility labels need dlib-bin and face-recognition-models (pip install 'fiqa-stream[train]')",
)


def _held(genuine: np.ndarray, utility: np.ndarray, degradation: list[str], threshold: float = 0.5) -> HeldOut:
    n = len(genuine)
    return HeldOut(Path("."), [f"{i}.png" for i in range(n)], np.zeros(n, int), np.zeros(n, int), np.zeros(n, int),
                   degradation, np.zeros(n), np.ones(n), genuine, utility, threshold)


def test_erc_falls_when_the_failures_are_rejected_first() -> None:
    genuine = np.array([0.9, 0.8, 0.3, 0.2, 0.1, 0.7, 0.2, 0.3, 0.1, 0.2])
    oracle = -genuine
    curve = erc(oracle, genuine, 0.5, np.array([0.0, 0.1, 0.2, 0.3, 0.5]))
    assert curve.tolist() == pytest.approx([0.3, 2 / 9, 1 / 8, 0.0, 0.0])
    # The reverse order rejects the good comparisons and keeps every failure.
    assert erc(genuine, genuine, 0.5, np.array([0.3]))[0] == pytest.approx(3 / 7)


def test_best_of_8_hits_only_when_the_top_score_is_a_top_2_sighting() -> None:
    utility = np.linspace(0.1, 0.9, 8)
    held = _held(np.zeros(8), utility, ["blur"] * 8)
    assert hit_at_2(utility, held) == 1.0
    assert hit_at_2(np.r_[utility[:6], 0.0, 0.0], held) == 0.0
    swapped = utility.copy()
    swapped[[6, 7]] = swapped[[7, 6]]
    assert hit_at_2(swapped, held) == 1.0
    # Constant scores earn nothing: the first sighting is the weakest.
    assert hit_at_2(np.ones(8), held) == 0.0


def test_report_ranks_an_oracle_above_random() -> None:
    rng = np.random.default_rng(0)
    genuine = rng.uniform(0.1, 0.6, 400)
    utility = 1 / (1 + np.exp(-(0.6 - genuine) / 0.08))
    kinds = ["blur", "noise"] * 200
    held = _held(genuine, utility, kinds)
    oracle, random = report(utility, held), report(rng.random(400), held)
    assert oracle.spearman == pytest.approx(1.0)
    assert min(oracle.per_degradation.values()) == pytest.approx(1.0)
    assert oracle.erc_area < 0.5 * random.erc_area
    assert oracle.fnmr[0.5] == 0.0


def _sightings(identity: list[int], degradation: list[str], severity: list[float], utility: list[float]) -> HeldOut:
    n = len(identity)
    return HeldOut(Path("."), [f"{i}.png" for i in range(n)], np.array(identity), np.zeros(n, int), np.zeros(n, int),
                   degradation, np.array(severity), np.ones(n), np.zeros(n), np.array(utility), 0.5)


def test_within_one_person_a_score_is_judged_on_each_persons_order_not_on_offsets_between_people() -> None:
    # Two people through blur at four strengths: person 1's labels sit far above person 0's
    # (say, one more reference photo), while the score puts person 1 below person 0.
    identity = [0] * 4 + [1] * 4
    utility = [0.4, 0.3, 0.2, 0.1, 0.9, 0.8, 0.7, 0.6]
    held = _sightings(identity, ["blur"] * 8, [1, 2, 3, 4] * 2, utility)
    score = np.array([0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1])
    assert within_person(score, held) == {"blur": pytest.approx(1.0)}
    assert report(score, held).per_degradation["blur"] < 0.0
    # Each person's order reversed reads -1, whatever the offsets.
    assert within_person(-score, held) == {"blur": pytest.approx(-1.0)}


def test_a_person_whose_utility_does_not_vary_is_left_out_of_the_mean() -> None:
    held = _sightings([0, 0, 0, 1, 1, 1, 2, 2], ["blur"] * 6 + ["noise"] * 2, [1, 2, 3] * 2 + [1, 2],
                      [0.9, 0.5, 0.1, 0.7, 0.7, 0.7, 0.6, 0.6])
    figures = within_person(np.array([0.3, 0.2, 0.1, 0.1, 0.2, 0.3, 0.5, 0.4]), held)
    assert figures["blur"] == pytest.approx(1.0)
    assert np.isnan(figures["noise"])


def test_the_degradation_oracle_scores_a_sighting_by_other_people_at_the_nearest_strengths() -> None:
    reference = _sightings([5, 6, 5, 6, 7], ["blur", "blur", "blur", "blur", "noise"], [0.2, 0.3, 0.8, 0.9, 0.5],
                           [0.9, 0.7, 0.3, 0.1, 0.6])
    held = _sightings([1, 1, 2], ["blur", "blur", "jpeg"], [0.25, 0.85, 0.5], [0.5, 0.5, 0.5])
    oracle = degradation_oracle(held, reference, neighbours=2)
    assert oracle.tolist() == pytest.approx([0.8, 0.2, np.mean([0.9, 0.7, 0.3, 0.1, 0.6])])


def _point(x: float, y: float = 0.0) -> np.ndarray:
    """A 128-d descriptor at (x, y) in its first two coordinates."""
    return np.r_[x, y, np.zeros(126)]


def test_other_labels_read_the_impostor_distribution_the_certainty_ratio_the_mirror_and_the_own_view(
        tmp_path: Path) -> None:
    # Person 0 has one photo (views 0 and 1, each clean and blurred); person 1's photo is the only impostor
    # besides person 2's. The view-1 clean sighting lies 0.4 from the view-0 one, as a turned head's mirror does.
    gallery = np.stack([_point(0.0), _point(1.0), _point(0.0, 1.2)])
    descriptors = np.stack([_point(0.0), _point(0.1), _point(0.4), _point(0.5)])
    np.savez(tmp_path / "descriptors.npz", descriptors=descriptors, identities=np.zeros(4, int), gallery=gallery,
             gallery_identities=np.array([0, 1, 2]))
    genuine = np.array([0.0, 0.1, 0.0, 0.1])  # each against its own view's clean sighting
    held = HeldOut(tmp_path, [f"{i}.png" for i in range(4)], np.zeros(4, int), np.zeros(4, int),
                   np.array([0, 0, 1, 1]), ["clean", "blur", "clean", "blur"], np.array([0, 1, 0, 1.0]), np.ones(4),
                   genuine, np.ones(4), 0.5)
    sdd, cr, mirror, own = relabelled(held).values()
    impostor = np.linalg.norm(descriptors[:, None] - gallery[None, 1:], axis=2)
    np.testing.assert_allclose(sdd.utility, impostor.mean(axis=1) - genuine)
    np.testing.assert_allclose(cr.utility, impostor.min(axis=1) / np.maximum(genuine, 1e-6))
    to_mirror = np.abs(np.array([0.0, 0.1, 0.4, 0.5]) - np.array([0.4, 0.4, 0.0, 0.0]))
    np.testing.assert_allclose(mirror.utility, utility((genuine + to_mirror) / 2, impostor.min(axis=1)))
    # Each blurred sighting lies 0.1 from its own view's clean one, whatever the person's other references:
    # here stored genuine distances that also average in a far second photo are ignored.
    far = relabelled(replace(held, genuine=genuine + 0.3))["own clean view as the only genuine reference"]
    np.testing.assert_allclose(own.utility, utility(np.array([0.0, 0.1, 0.0, 0.1]), impostor.min(axis=1)))
    np.testing.assert_allclose(far.utility, own.utility)
    # Every other field, and so ERC, is the held-out set's own.
    assert mirror.genuine is held.genuine and mirror.threshold == held.threshold


def test_the_mirror_label_needs_the_framing_and_its_mirror(tmp_path: Path) -> None:
    np.savez(tmp_path / "descriptors.npz", descriptors=np.stack([_point(0.0)] * 2), identities=np.zeros(2, int),
             gallery=np.stack([_point(0.0), _point(1.0)]), gallery_identities=np.array([0, 1]))
    jittered = HeldOut(tmp_path, ["a.png", "b.png"], np.zeros(2, int), np.zeros(2, int), np.array([0, 2]),
                       ["clean", "clean"], np.zeros(2), np.ones(2), np.zeros(2), np.ones(2), 0.5)
    with pytest.raises(ValueError, match="views 0 and 1"):
        relabelled(jittered)
    alone = replace(jittered, view=np.array([0, 0]))
    with pytest.raises(ValueError, match="no clean sighting of"):
        relabelled(alone)
    with pytest.raises(ValueError, match="not the whole folder"):
        relabelled(subset(alone, np.array([True, False])))


def test_the_strength_ceiling_is_the_best_order_of_the_strengths() -> None:
    # Utility falls with strength for person 1 but not for person 2 at the two mildest
    # strengths, so the ceiling orders strengths by their sightings' utility, not by strength.
    held = _sightings([1, 1, 1, 2, 2, 2], ["blur"] * 6, [0.1, 0.5, 0.9] * 2, [0.9, 0.95, 0.3, 0.7, 0.99, 0.2])
    ceiling = report(strength_ceiling(held), held).per_degradation["blur"]
    by_strength = report(-held.severity, held).per_degradation["blur"]
    assert strength_ceiling(held).tolist() == [3.5, 5.5, 1.5] * 2
    assert ceiling > by_strength
    best = max(report(np.array(order, float)[[0, 1, 2, 0, 1, 2]], held).per_degradation["blur"]
               for order in itertools.permutations(range(3)))
    assert ceiling == pytest.approx(best)


def test_the_worst_degradation_fusion_mixes_components_that_each_fail_one_degradation() -> None:
    # "a" follows blur but reads noise slightly backwards; "b" follows noise but reads blur strongly
    # backwards. Only a mix with "a" at 2-3.3 times "b" orders both; an even mix inverts blur.
    rng = np.random.default_rng(0)
    severity = np.tile(np.linspace(0.1, 0.8, 8), 2)
    degradation = ["blur"] * 8 + ["noise"] * 8
    utility = 1.0 - severity + rng.normal(0, 0.001, 16)
    held = _sightings([0] * 16, degradation, severity.tolist(), utility.tolist())
    a = np.where(np.arange(16) < 8, utility, 0.3 * severity)
    b = np.where(np.arange(16) < 8, 2.0 * severity, utility)
    weights = worst_degradation_fusion({"a": a, "b": b}, held)
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-3)
    assert 2.0 < weights["a"] / weights["b"] < 3.4
    assert report(weights["a"] * a + weights["b"] * b, held).worst_degradation > 0.9
    assert report(a + b, held).worst_degradation < 0.0
    assert max(report(a, held).worst_degradation, report(b, held).worst_degradation) < 0.0


def test_a_subset_keeps_the_chosen_sightings_and_the_threshold() -> None:
    held = _sightings([1, 2, 1], ["blur", "noise", "clean"], [0.2, 0.5, 0.0], [0.7, 0.4, 1.0])
    part = subset(held, held.identity == 1)
    assert part.names == ["0.png", "2.png"]
    assert part.degradation == ["blur", "clean"]
    assert part.utility.tolist() == [0.7, 1.0]
    assert part.threshold == held.threshold


def test_single_photo_people_leaves_out_every_sighting_of_a_person_with_several_photos() -> None:
    held = replace(_sightings([1, 1, 2, 2, 3], ["clean", "blur", "clean", "blur", "clean"], [0.0, 0.5, 0.0, 0.5, 0.0],
                              [1.0, 0.9, 0.8, 0.7, 1.0]), photo=np.array([0, 0, 0, 1, 0]))
    assert single_photo_people(held).tolist() == [True, True, False, False, True]


def test_per_person_shows_the_one_person_whose_offset_decides_a_degradation() -> None:
    # Persons 1 and 2 are ranked by strength; person 3's utility sits lower at every
    # strength, which the score (strength alone) cannot see.
    people = [1] * 4 + [2] * 4 + [3] * 4
    severity = [0.0, 0.3, 0.6, 0.9] * 3
    kinds = ["clean", "blur", "blur", "blur"] * 3
    utility = [1.0, 0.9, 0.8, 0.7, 1.0, 0.89, 0.79, 0.69, 0.8, 0.6, 0.5, 0.4]
    held = _sightings(people, kinds, severity, utility)
    score = -np.array(severity)
    rows = {r.identity: r for r in per_person(score, held)}
    assert report(score, held).per_degradation["blur"] < 0.6
    assert rows[3].worst_without > 0.9
    assert rows[3].worst_kind_without == "blur"
    assert rows[1].worst_without < 0.6
    assert (rows[3].photos, rows[3].clean_utility, rows[3].clean_score) == (1, pytest.approx(0.8), pytest.approx(0.0))


def test_person_intervals_are_wide_when_one_person_decides_the_figure_and_narrow_when_none_does() -> None:
    # Four people ranked by strength alone; in "blur" person 4's utility sits below
    # everyone's at every strength, in "noise" nobody's does.
    people = [p for p in (1, 2, 3, 4) for _ in range(4)]
    severity = [0.0, 0.3, 0.6, 0.9] * 4
    base = [0.9, 0.8, 0.7, 0.6]
    blur = _sightings(people, ["blur"] * 16, severity, base * 3 + [u - 0.5 for u in base])
    noise = _sightings(people, ["noise"] * 16, severity, base * 4)
    score = -np.array(severity)
    blur_low, blur_high = person_intervals(score, blur, draws=300)["blur"]
    noise_low, noise_high = person_intervals(score, noise, draws=300)["noise"]
    assert blur_low < report(score, blur).per_degradation["blur"] < blur_high
    assert blur_high - blur_low > 0.3
    assert noise_low == pytest.approx(1.0) and noise_high == pytest.approx(1.0)


def test_a_score_judged_against_itself_differs_by_nothing_on_any_draw() -> None:
    people = [p for p in (1, 2, 3, 4) for _ in range(4)]
    held = _sightings(people, ["blur"] * 16, [0.0, 0.3, 0.6, 0.9] * 4, [0.9, 0.8, 0.7, 0.6] * 4)
    score = np.linspace(0.0, 1.0, 16)
    for difference in paired_person_bootstrap(score, score, held, draws=50).values():
        assert (difference.observed, difference.low, difference.high, difference.second_better) == (0, 0, 0, 0)


def test_a_score_better_for_every_person_is_better_on_the_draws_and_one_better_for_one_person_is_not() -> None:
    # Four people through blur at four strengths, each with their own offset in utility.
    people = [p for p in (1, 2, 3, 4) for _ in range(4)]
    severity = [0.0, 0.3, 0.6, 0.9] * 4
    utility = np.array([0.9, 0.8, 0.7, 0.6] * 4) - np.repeat([0.0, 0.1, 0.2, 0.3], 4)
    held = _sightings(people, ["blur"] * 16, severity, utility.tolist())
    strength_only = -np.array(severity)
    everyone = paired_person_bootstrap(strength_only, utility, held, draws=200)["Spearman pooled"]
    # Only a draw of one person four times (1 in 64) leaves no offsets between people to read.
    assert everyone.observed > 0 and everyone.low > 0 and everyone.second_better > 0.95
    # Better than the strength alone only for person 4, whose utility it reads; the
    # others it ranks backwards within themselves.
    one_person = np.where(np.array(people) == 4, utility, np.array(severity))
    mixed = paired_person_bootstrap(strength_only, one_person, held, draws=200)["Spearman pooled"]
    assert mixed.low < 0 < mixed.high or mixed.high < 0
    assert mixed.second_better < 0.5


def test_each_person_is_judged_on_their_own_sightings_and_counted_by_how_many_photos_they_have() -> None:
    # Person 1 has two photos, persons 2 and 3 one each. The old score ranks person 1
    # backwards, the new one person 3; both read person 2 alike.
    people = np.array([p for p in (1, 2, 3) for _ in range(4)])
    utility = np.array([0.9, 0.7, 0.5, 0.3] * 3)
    held = replace(_sightings(people.tolist(), ["blur"] * 12, [0.0, 0.3, 0.6, 0.9] * 3, utility.tolist()),
                   photo=np.array([0, 1, 0, 1] + [0] * 8))
    old, new = np.where(people == 1, -utility, utility), np.where(people == 3, -utility, utility)
    pairs = paired_by_person(old, new, held)
    assert [(p.identity, p.photos) for p in pairs] == [(1, 2), (2, 1), (3, 1)]
    assert [(p.first, p.second) for p in pairs] == [(-1.0, 1.0), (1.0, 1.0), (1.0, -1.0)]
    table = person_pair_table(pairs, "old", "new")
    assert "| held-out person | photos | old | new | new minus old |" in table
    assert "| 3 | 1 | 1.000 | -1.000 | -2.000 |" in table
    assert "new is better for 0 of the 2 people with one photo." in table
    assert "new is better for 1 of the 1 people with several photos." in table


@pytest.fixture(scope="module")
def held_out_folder(tmp_path_factory: pytest.TempPathFactory, photos: list[np.ndarray]) -> Path:
    """Three bundled faces through defocus blur and low resolution at 4 strengths, as ``dataset``'s test/."""
    from fiqa_stream.scorers.training.recognition import Recogniser
    from fiqa_stream.scorers.training.sources import Identity, Photo, detect_faces
    from fiqa_stream.scorers.training.utility import (
        build_utility_samples,
        gallery,
        grid_chains,
        write_utility_samples,
    )

    root = tmp_path_factory.mktemp("held-out")
    people = []
    for k in (1, 3, 6):
        (landmarks, confidence), *_ = detect_faces(photos[k])
        people.append(Identity(f"bundled/{k}", (Photo(f"bundled/{k}", photos[k], landmarks, confidence),)))
    recogniser = Recogniser()
    refs = gallery(people, recogniser)
    chains = grid_chains(("defocus_blur", "low_resolution"), severities=4)
    samples = build_utility_samples(people, [0, 1, 2], refs, recogniser, chains, jitters=0, seed=0, mirror=False)
    write_utility_samples(samples, root, people, refs, None)
    return root


@needs_dlib
@pytest.mark.slow
def test_eval_command_reports_every_score_on_held_out_faces(
    held_out_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fiqa_stream.cli.main import main

    assert main(["eval", "--data", str(held_out_folder), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["sightings"] == 3 * 9 and result["identities"] == 3
    names = set(result["scores"])
    assert {"fused", "model:student", "model:mspt", "model:ensemble", "sharpness", "exposure", "pose", "size",
            "confidence", "laplacian_variance", "random"} <= names
    for figures in result["scores"].values():
        assert set(figures["per_degradation"]) == {"defocus_blur", "low_resolution"}
        assert 0.0 <= figures["erc_area"] <= 1.0 and 0.0 <= figures["hit_at_2"] <= 1.0
        assert set(figures["within_person"]) == {"defocus_blur", "low_resolution"}
    # Defocus blur hurts dlib steadily: the weight-free sharpness follows it within each face.
    assert result["scores"]["sharpness"]["per_degradation"]["defocus_blur"] > 0.5


@needs_dlib
@pytest.mark.slow
def test_eval_against_another_model_gives_each_figures_difference_over_drawn_people(
    held_out_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fiqa_stream.cli.main import main

    assert main(["eval", "--data", str(held_out_folder), "--against", "student", "--json"]) == 0
    against = json.loads(capsys.readouterr().out)["against"]
    assert against["model"] == "student" and against["coverage"] == 0.9
    differences = against["fused_minus_against"]
    assert set(differences) == {"Spearman pooled", "Spearman worst degradation", "ERC area", "best-of-8 hit@2"}
    for d in differences.values():
        assert d["low"] <= d["high"] and 0.0 <= d["second_better"] <= 1.0
    people = against["within_each_person"]
    assert sorted(p["identity"] for p in people) == [0, 1, 2]
    assert all(p["photos"] == 1 and -1.0 <= p["first"] <= 1.0 and -1.0 <= p["second"] <= 1.0 for p in people)
    assert main(["eval", "--data", str(held_out_folder), "--against", "student-utility"]) == 0
    table = capsys.readouterr().out.split("Fused against student-utility's fused score")[1]
    assert "| Spearman pooled | +0.0000 | +0.0000 to +0.0000 | 0 % |" in table
    within = table.split("Spearman with utility within each held-out person")[1]
    assert within.count("| +0.000 |") == 3
    assert "is better for 0 of the 3 people with one photo." in within


def test_eval_against_needs_a_held_out_utility_folder_and_a_model_the_scorer_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fiqa_stream.cli.main import main

    labels = tmp_path / "labels.csv"
    labels.write_text("path,score\n")
    assert main(["eval", "student", "--data", str(labels), "--against", "student-utility"]) == 2
    assert f"--against: {labels} is not a held-out utility folder" in capsys.readouterr().err


@needs_dlib
@pytest.mark.slow
def test_eval_fits_fusion_weights_for_a_model_file_of_ones_own_and_judges_it_beside_the_shipped_ones(
    held_out_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from fiqa_stream.cli.main import main
    from fiqa_stream.scorers.config import FiqaScorerConfig, FiqaWeights
    from fiqa_stream.scorers.fiqa import FiqaScorer
    from fiqa_stream.scorers.weights import SHIPPED

    mine = tmp_path / "mine.onnx"
    shutil.copyfile(SHIPPED["mspt"].onnx, mine)
    fusion = tmp_path / "mine.fusion.json"
    assert main(["eval", str(mine), "--data", str(held_out_folder), "--fit-fusion", str(fusion)]) == 0
    fitted = json.loads(fusion.read_text())["weights"]
    assert sum(fitted.values()) == pytest.approx(1.0, abs=1e-3)
    assert FiqaScorer(FiqaScorerConfig(model=mine)).fusion == FiqaWeights(**fitted)
    capsys.readouterr()

    assert main(["eval", str(mine), "--data", str(held_out_folder), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)["scores"]
    assert {"fused", f"model:{mine}", "model:mspt", "model:student-utility"} <= set(scores)
    # The file is the shipped mspt model: alone, it ranks exactly as mspt does.
    assert scores[f"model:{mine}"]["spearman"] == pytest.approx(scores["model:mspt"]["spearman"], abs=1e-9)


@needs_dlib
@pytest.mark.slow
def test_fitting_on_fusion_val_draws_the_components_mix_from_the_training_identities_beside_it(
    held_out_folder: Path, tmp_path: Path
) -> None:
    import shutil

    from fiqa_stream.cli.main import main

    for part in ("fusion-val", "fusion"):
        shutil.copytree(held_out_folder, tmp_path / "data" / part)
    fusion = tmp_path / "mine.fusion.json"
    assert main(["eval", "mspt", "--data", str(tmp_path / "data" / "fusion-val"), "--fit-fusion", str(fusion)]) == 0
    fitted_on = json.loads(fusion.read_text())["fitted_on"]
    assert "(DATA/fusion-val)" in fitted_on and "training identities (DATA/fusion)" in fitted_on
