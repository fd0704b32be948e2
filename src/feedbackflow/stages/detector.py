"""detector: train the learned name and location detector on human-labelled text into ``models/detector``.

Reads the corpora ``detector.corpora`` names (``data/ner-btc``, ``data/ner-wnut17``: tweets and posts labelled by
people, CC BY 4.0), fine-tunes ``detector.base_model`` as a token classifier and keeps the epoch and threshold that
score best on the dev splits (:mod:`feedbackflow.privacy.detector_training`). Writes the model, its tokenizer,
``detector.json`` (threshold, dev and test figures) and a model card naming the training data and licences, plus
``reports/detector/metrics.json``. With ``anonymise.detector`` off nothing is trained: the folder holds only a
``detector.json`` saying so, and the anonymiser does not read it.
"""

from __future__ import annotations

import logging
import shutil

from feedbackflow.config import ProjectPaths
from feedbackflow.io import write_json
from feedbackflow.modeling.model import pick_device, resolve_base_model
from feedbackflow.privacy.detector import META_FILE
from feedbackflow.privacy.detector_training import (
    SPLITS,
    corpus_source,
    fine_tune,
    model_card,
    read_split,
    save,
    score_test,
)
from feedbackflow.settings import Settings

log = logging.getLogger(__name__)


def run(settings: Settings, paths: ProjectPaths) -> dict:
    """Train (or, with ``anonymise.detector`` off, mark as off) the detector; return its figures."""
    import torch

    target = paths.detector
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    report = paths.stage_reports("detector") / "metrics.json"
    if not settings.anonymise.detector:
        write_json(target / META_FILE, {"enabled": False})
        write_json(report, {"enabled": False})
        log.info("anonymise.detector is off: no detector trained")
        return {"enabled": False}
    config = settings.detector
    folders = [paths.root / corpus for corpus in config.corpora]
    sources = [corpus_source(folder) for folder in folders]
    corpora = {folder.name: {split: read_split(folder, split) for split in SPLITS} for folder in folders}
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    base_model = resolve_base_model(config.base_model, paths.root)
    result = fine_tune(base_model, corpora, config, settings.base.seed, pick_device(config.device))
    score_test(result, corpora, config)
    meta = save(result, target, config, model_card(result, sources, config.base_model))
    figures = {"enabled": True, **{key: meta[key] for key in ("epoch", "threshold", "dev", "test", "seconds")}}
    write_json(report, figures)
    log.info(
        "detector: epoch %d, threshold %s, dev %s, test %s", result.epoch, result.threshold, result.dev, result.test
    )
    return figures
