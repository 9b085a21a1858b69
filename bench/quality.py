"""Benchmark: how well every quality score predicts face recognition, on held-out identities.

    python bench/quality.py --data DIR/test [--model NAME] [--no-write]

``DIR`` is written by ``fiqa-stream dataset DIR`` (recognition-utility labels; its
``test/`` holds identities never trained on, every camera degradation alone at 8
strengths). Prints and records in docs/BENCHMARKS.md (with the machine) the figures of
``fiqa-stream eval`` for the fused score, each shipped model alone, every weight-free
component, the Laplacian variance and a random order, the same for the fused score, the
model and the landmark-read components given ideal landmarks, the model on crops turned by
10-30° (what a detector's roll error costs it), plus the fused scorer's CPU
throughput at batch 32 (faces/s, alignment and every component included), and the
figures of a yardstick no scorer can be: ``utility_eval.degradation_oracle``, a
face-agnostic degradation meter calibrated on the training identities (``DIR/train``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from common import write_section  # noqa: E402

from fiqa_stream.cli.evaluate import (  # noqa: E402
    default_model,
    held_out_faces,
    score_held_out,
    turned_model_scores,
)
from fiqa_stream.scorers.config import FiqaScorerConfig  # noqa: E402
from fiqa_stream.scorers.fiqa import FUSED, FiqaScorer, runs_int8  # noqa: E402
from fiqa_stream.scorers.training.utility_eval import (  # noqa: E402
    BOOTSTRAP_COVERAGE,
    BOOTSTRAP_DRAWS,
    HeldOut,
    Report,
    degradation_oracle,
    interval_table,
    load_held_out,
    markdown_table,
    per_degradation_table,
    per_person,
    per_person_table,
    person_intervals,
    relabelled,
    report,
    single_photo_people,
    strength_ceiling,
    subset,
    worst_degradation_fusion,
)

MIN_SECONDS = 3.0
#: Degrees the framing is turned by to measure what a tilted crop costs the model.
TURNS = (0, 10, 20, 30)


def faces_per_second(model: str, faces: list, precision: str = "auto", batch: int = 32) -> float:
    """Faces scored per second by the fused scorer in batches of ``batch``."""
    scorer = FiqaScorer(FiqaScorerConfig.model_validate({"model": model, "batch_size": batch,
                                                         "precision": precision}))
    scorer.score(faces[:batch])
    done, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < MIN_SECONDS or done < 4 * batch:
        start = (done // batch * batch) % max(len(faces) - batch, 1)
        scorer.score(faces[start : start + batch])
        done += batch
    return done / elapsed


def by_kind_of_person(scores: np.ndarray, held: HeldOut) -> dict[str, Report]:
    """Reports of ``scores`` and of the strength ceiling over each kind of person: several photos, one photo."""
    one_photo = single_photo_people(held)
    out = {}
    for kind, keep in (("several photos", ~one_photo), ("one photo", one_photo)):
        people = subset(held, keep)
        out[f"fused, {kind}"] = report(scores[keep], people)
        out[f"strength ceiling, {kind}"] = report(strength_ceiling(people), people)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the held-out utility folder (DIR/test)")
    parser.add_argument("--model", default=default_model(),
                        help="the fused scorer's model (default: the default scorer's, %(default)s)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/BENCHMARKS.md alone")
    args = parser.parse_args()

    held = load_held_out(args.data)
    scores = score_held_out(held, args.model)
    reports = {name: report(values, held) for name, values in scores.items()}
    reference = load_held_out(args.data.parent / "train")
    oracle = "degradation oracle (knows the degradation and strength; not a scorer)"
    yardstick = {oracle: report(degradation_oracle(held, reference), held)}
    model_alone = f"model:{args.model}"
    fused_parts = {"model": scores[model_alone], **{name: scores[name] for name in FUSED[1:]}}
    bound_weights = worst_degradation_fusion(fused_parts, held)
    bound = "fusion weights chosen on these people for the worst degradation (reads the labels; not a scorer)"
    yardstick[bound] = report(sum(w * fused_parts[name] for name, w in bound_weights.items()), held)
    strength_order = "best order of the strengths (ceiling of any face-agnostic meter)"
    ceiling_scores = strength_ceiling(held)
    ceiling = {oracle: yardstick[oracle], strength_order: report(ceiling_scores, held)}
    spread = {"fused": scores["fused"], model_alone: scores[model_alone], strength_order: ceiling_scores}
    intervals = {name: person_intervals(values, held) for name, values in spread.items()}
    spread_reports = {"fused": reports["fused"], model_alone: reports[model_alone],
                      strength_order: ceiling[strength_order]}
    ideal_scores = score_held_out(held, args.model, models=(args.model,), ideal_landmarks=True)
    landmark_reports = {}
    for name in ("fused", model_alone, "pose", "sharpness"):
        landmark_reports[f"{name}, yuface's landmarks"] = reports[name]
        landmark_reports[f"{name}, ideal landmarks"] = report(ideal_scores[name], held)
    roll_reports = {f"{model_alone}, crops turned by ±{d}°" if d else f"{model_alone}, level crops":
                    report(turned_model_scores(held, args.model, float(d)), held) for d in TURNS}
    label_reports = {}
    for label, relabelled_held in relabelled(held).items():
        for name in ("fused", model_alone, "confidence", "laplacian_variance"):
            label_reports[f"{name}, {label}"] = report(scores[name], relabelled_held)
    kind_reports = {"fused, everyone": reports["fused"], "strength ceiling, everyone": ceiling[strength_order],
                    **by_kind_of_person(scores["fused"], held)}
    sample = held_out_faces(held, 0, min(len(held), 256))
    speed = faces_per_second(args.model, sample)
    integer = runs_int8(FiqaScorerConfig.model_validate({"model": args.model}), "cpu")
    float_speed = faces_per_second(args.model, sample, "float32") if integer else speed
    identities = len(set(held.identity.tolist()))
    body = "\n".join([
        "### Quality against recognition utility, held-out identities",
        "",
        f"`python bench/quality.py --data DIR/test` (`fiqa-stream eval --data DIR/test`): {len(held)} sightings "
        f"of {identities} identities never trained on (`fiqa-stream dataset DIR`), every camera degradation "
        "alone at 8 strengths plus the clean views. Utility: dlib's ResNet descriptor matched against the "
        "identity's clean photos and the nearest impostor (`scorers/training/utility.py`). ERC: FNMR at "
        f"FMR 1e-3 (dlib distance threshold {held.threshold:.3f} over every impostor comparison) after "
        "rejecting the lowest-quality sightings; ERC area = mean FNMR over rejection 0-50 %. Fused scorer "
        f"(`{args.model}` with the fusion weights shipped with it) throughput at batch 32, alignment, model and "
        f"every weight-free component: {speed:.0f} faces/s"
        + (f" with its 8-bit integer model (the CPU default), {float_speed:.0f} with the float one, measured in "
           "this run." if integer else "."),
        "",
        markdown_table(reports),
        "",
        "Landmarks: every figure above aligns and reads pose from the landmarks yuface, the default "
        "detector, finds on the degraded sighting, as the pipeline does. Given the ideal landmarks instead "
        "(the framing each sighting was cut to, which is how this table was measured before 2026-12-02; "
        "`evaluate.score_held_out(..., ideal_landmarks=True)`), the same scores read:",
        "",
        markdown_table(landmark_reports),
        "",
        "Roll: the model alone on crops cut by each sighting's framing, level and turned by 10-30° "
        "(alternately either way; `evaluate.turned_model_scores`). The landmarks above are found where the "
        "eyes are about 70 px apart, where yuface's roll is good; on a small face in a whole frame it can be "
        "tens of degrees off level, and this is what that costs:",
        "",
        markdown_table(roll_reports),
        "",
        "Spearman with utility per degradation:",
        "",
        per_degradation_table(reports),
        "",
        "Spearman with utility per degradation within one person (`utility_eval.within_person`: among one "
        "person's sightings of the degradation, both views and every strength, averaged over the people whose "
        "utility varies there). A track holds one person, so this is the ranking best-shot selection uses; how "
        "different people's labels compare does not enter:",
        "",
        per_degradation_table(reports, one_person=True),
        "",
        "Yardstick: each sighting scored by the mean utility of the 16 training sightings (other people) "
        "through the same degradation at the nearest strengths (`utility_eval.degradation_oracle`): a meter of "
        "the degradation, calibrated on the training identities, that knows nothing of the face. What it "
        "cannot reach is decided by how the held-out people differ in the labels, not by the degradation. "
        "Below it, the fused score's six components (the model alone and the five weight-free ones) weighted to "
        "lift the worst per-degradation Spearman as far as they can, the weights searched on these held-out "
        "sightings themselves (`utility_eval.worst_degradation_fusion`): "
        + ", ".join(f"{name} {w:.3f}" for name, w in bound_weights.items() if w >= 0.001)
        + f". No weighting of today's components lifts the worst degradation above "
        f"{yardstick[bound].worst_degradation:.3f} on these people, and that weighting reads "
        f"{yardstick[bound].spearman:.3f} pooled and {yardstick[bound].erc_area:.4f} ERC area, against the "
        f"shipped fusion's {reports['fused'].spearman:.3f} and {reports['fused'].erc_area:.4f}"
        + (": a Spearman of 0.6 in every degradation has to come from the model or a new component, not from "
           "the weights." if yardstick[bound].worst_degradation < 0.6 else "."),
        "",
        markdown_table(yardstick),
        "",
        "Within one degradation, a score that knows only the strength can do no better than order the "
        "strengths by the utility of their sightings (`utility_eval.strength_ceiling`, which reads the labels): "
        "the second column is what any face-agnostic meter can reach per degradation; above it a score must "
        "see from the image which people the recogniser finds harder:",
        "",
        per_degradation_table(ceiling),
        "",
        "The same two, fused score and strength ceiling, over each kind of held-out person apart: the people "
        "with several photos, matched against their other photos too, and the people with one photo, matched "
        "against that photo alone (`utility_eval.single_photo_people`). Even clean, the first kind's utility is "
        "lower by an amount no image of theirs shows, so a degradation that hardly troubles the recogniser "
        "(low resolution) is ranked over everyone mostly by which kind a sighting belongs to: where a figure "
        "over everyone lies below both kinds' figures, that mix, not the ranking of the degradation, is what "
        "holds it down.",
        "",
        per_degradation_table(kind_reports),
        "",
        "Per held-out person, the fused score: the clean views' mean utility and mean score, and the fused "
        "score's worst per-degradation Spearman over everyone else (`utility_eval.per_person`). "
        "Utility is measured against the person's own clean photos: for a person with one photo it cannot see "
        "what the photo itself costs recognition (a turned head, a hand over the mouth).",
        "",
        per_person_table(per_person(scores["fused"], held)),
        "",
        "The same scores against other definitions of utility, from the same descriptors "
        "(`utility_eval.relabelled`): the separation from the whole impostor distribution (after SDD-FIQA), "
        "the certainty ratio (after CR-FIQA), the shipped formula with each photo's mirrored clean view as "
        "one more genuine reference, which lets a one-photo person's turned head or covered mouth cost "
        "something, and the shipped formula with the sighting's own clean view as its only genuine reference "
        "(what the degradation alone costs recognition, every person matched alike; it drops the real pose and "
        "light change of other photos, so it is a check on the kind mix above, not the measure). ERC is the "
        "same under every label (it reads the distances):",
        "",
        markdown_table(label_reports),
        "",
        f"How much a per-degradation figure depends on which {identities} people were held out: the interval "
        f"holding {100 * BOOTSTRAP_COVERAGE:.0f} % of its values when the {identities} are drawn again with "
        f"replacement ({BOOTSTRAP_DRAWS:,} draws, "
        "`utility_eval.person_intervals`). Where it is wide, the figure says more about the people drawn than "
        "about the score.",
        "",
        interval_table(spread_reports, intervals),
    ])
    print(body)
    if not args.no_write:
        write_section("quality", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
