"""Classifier benchmark on the man pages: accuracy of docmill's model vs the naive baseline, and docs/s.

Run:  /work/venv/bin/python benchmarks/bench_classify.py [--data /work/shared/data] [--cv 5] [--seed 0]

The text is extracted once, through the real pipeline (DirectorySource + ExtractText). Both models
are trained on the same stratified split (fixed seed) and scored on the same held-out documents,
in the same process, one after the other; cross-validation runs k folds over the whole corpus.
Throughput is one document at a time through each Processor, on already-extracted text (the cost a
run adds per document), single-threaded; the model classifiers are timed both compiled (what runs
use) and calling scikit-learn per document, in turn, over several rounds. Worker start-up is
``ModelClassifier.setup()`` in a fresh interpreter: the version-2 arrays (numpy only) against
unpickling the pipeline and compiling it (what version-1 files do), in turn, best of the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from docmill.document import Document, DocumentRef
from docmill.model.evaluation import read_truth, score
from docmill.model.features import BLOCKS, baseline_pipeline, build_pipeline
from docmill.model.labels import load_labels
from docmill.model.training import Corpus, ModelFactory, Trained, cross_validate, load_corpus, save, train
from docmill.processors.base import Processor
from docmill.processors.classify_keywords import KeywordClassifier
from docmill.processors.classify_model import ModelClassifier

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE.parents[1] / "shared" / "data")
    parser.add_argument("--cv", type=int, default=5, help="folds (0 = skip cross-validation)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds (the best one counts)")
    parser.add_argument(
        "--ablation", action="store_true", help="also cross-validate without each feature block"
    )
    args = parser.parse_args()

    started = time.perf_counter()
    corpus = load_corpus(args.data / "manpages", read_truth(args.data / "manpages-labels.csv"))
    print(f"extracted {len(corpus.paths)} man pages in {time.perf_counter() - started:.1f} s")

    with tempfile.TemporaryDirectory() as tmp:
        ours = _train(corpus, "docmill model", build_pipeline, seed=args.seed, out=Path(tmp) / "ours.model")
        naive = _train(
            corpus, "naive tf-idf+LinearSVC", baseline_pipeline, seed=args.seed, out=Path(tmp) / "naive.model"
        )
        held_out = [corpus.paths.index(p) for p in ours[0].test_paths]
        keywords = KeywordClassifier(load_labels(HERE / "manpages.labels.yaml"))
        _accuracy_line("keywords (zero-shot)", keywords, corpus, held_out)
        print()
        steps = [
            ("keywords", keywords),
            ("model (docmill)", ModelClassifier(ours[1])),
            ("model (docmill, sklearn)", ModelClassifier(ours[1], compiled=False)),
            ("model (naive baseline)", ModelClassifier(naive[1])),
            ("model (naive, sklearn)", ModelClassifier(naive[1], compiled=False)),
        ]
        _throughputs(steps, [corpus.texts[i] for i in held_out], rounds=args.rounds)
        _startups(ours[1], rounds=args.rounds)
    if args.cv:
        print()
        for name, factory in [
            ("docmill model", build_pipeline),
            ("naive tf-idf+LinearSVC", baseline_pipeline),
        ]:
            _cv(corpus, name, factory, folds=args.cv, seed=args.seed)
    if args.ablation:
        print()
        for left_out in ("all but words", *BLOCKS[1:]):
            kept = ("words",) if left_out == "all but words" else tuple(b for b in BLOCKS if b != left_out)
            name = "words only" if left_out == "all but words" else f"without {left_out}"
            _cv(corpus, name, _blocks(kept), folds=args.cv or 5, seed=args.seed)


def _blocks(kept: tuple[str, ...]) -> ModelFactory:
    return lambda *, seed: build_pipeline(seed=seed, blocks=kept)


def _train(corpus: Corpus, name: str, model: ModelFactory, *, seed: int, out: Path) -> tuple[Trained, Path]:
    started = time.perf_counter()
    trained = train(corpus, holdout=0.2, seed=seed, model=model)
    seconds = time.perf_counter() - started
    save(trained, corpus, out, seed=seed)
    report = trained.report
    assert report is not None
    print(
        f"{name:24s} held-out accuracy {report.accuracy:.4f}  macro-F1 {report.macro_f1:.4f}  "
        f"(n={report.n}, train {len(trained.train_paths)} docs in {seconds:.1f} s, "
        f"model file {out.stat().st_size / 1e6:.1f} MB)"
    )
    return trained, out


def _accuracy_line(name: str, step: Processor, corpus: Corpus, indices: Sequence[int]) -> None:
    step.setup()
    predicted = [_classify(step, corpus.texts[i]).metadata["label"] for i in indices]
    report = score(zip((corpus.labels[i] for i in indices), predicted, strict=True))
    print(
        f"{name:24s} held-out accuracy {report.accuracy:.4f}  macro-F1 {report.macro_f1:.4f}  (n={report.n})"
    )


def _classify(step: Processor, text: str) -> Document:
    return step.process(Document(DocumentRef("x", "x"), sha256="0" * 64, text=text))


def _throughputs(steps: Sequence[tuple[str, Processor]], texts: Sequence[str], *, rounds: int) -> None:
    """Classifiers timed in turn, ``rounds`` times over, so a busy machine slows them alike; best round."""
    best: dict[str, tuple[float, float]] = {}
    for _, step in steps:
        step.setup()
        _classify(step, texts[0])  # warm-up
    for _ in range(rounds):
        for name, step in steps:
            wall, cpu = time.perf_counter(), time.process_time()
            for text in texts:
                _classify(step, text)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best[name] = min(best.get(name, (wall, cpu)), (wall, cpu))
    for name, (wall, cpu) in best.items():
        print(
            f"{name:24s} {len(texts) / wall:8.0f} docs/s  ({1000 * wall / len(texts):.2f} ms/doc wall, "
            f"{1000 * cpu / len(texts):.2f} ms/doc CPU, 1 thread, best of {rounds})"
        )


_SETUP = """
import sys, time
from docmill.processors.classify_model import ModelClassifier
step = ModelClassifier(sys.argv[1])
started = time.perf_counter()
step.setup() if sys.argv[2] == "arrays" else step._unpickled()
print(time.perf_counter() - started, "sklearn" in sys.modules)
"""


def _startups(path: Path, *, rounds: int) -> None:
    """``setup()`` in a fresh interpreter (a worker's first step), arrays vs pickle + compile, in turn."""
    best: dict[str, tuple[float, bool]] = {}
    for _ in range(rounds):
        for how in ("arrays", "pickle"):
            out = subprocess.run(
                [sys.executable, "-c", _SETUP, str(path), how], capture_output=True, text=True
            )
            seconds, sklearn = out.stdout.split()
            best[how] = min(best.get(how, (float(seconds), False)), (float(seconds), sklearn == "True"))
    for how, (seconds, sklearn) in best.items():
        imported = "imports scikit-learn" if sklearn else "no scikit-learn import"
        print(f"worker start-up, {how:6s}  {seconds:.3f} s  ({imported}, best of {rounds})")


def _cv(corpus: Corpus, name: str, model: ModelFactory, *, folds: int, seed: int) -> None:
    started = time.perf_counter()
    reports = cross_validate(corpus, folds=folds, seed=seed, model=model)
    seconds = time.perf_counter() - started
    acc = [r.accuracy for r in reports]
    f1 = [r.macro_f1 for r in reports]
    print(
        f"{name:24s} {folds}-fold CV accuracy {statistics.mean(acc):.4f} ± {statistics.pstdev(acc):.4f}  "
        f"macro-F1 {statistics.mean(f1):.4f} ± {statistics.pstdev(f1):.4f}  ({seconds:.0f} s)"
    )


if __name__ == "__main__":
    main()
