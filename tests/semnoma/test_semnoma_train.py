"""Every role trains a step, writes safetensors weights, and resumes where it stopped."""

import json

import numpy as np
import skimage.data

from netsem.codecs.weights import load_state
from netsem.semnoma.train import TrainOptions, train
from netsem.semnoma.weights import load_model

PHOTOS = [skimage.data.chelsea(), skimage.data.coffee()]


def run(tmp_path, name, **kwargs):
    opts = TrainOptions(batch=2, log_every=1, **kwargs)
    out = tmp_path / f"{name}.safetensors"
    train(opts, PHOTOS, out, checkpoint=tmp_path / f"{name}.ckpt", log=lambda line: None)
    return out


def test_teacher_student_refiner_chain(tmp_path):
    teacher = run(tmp_path, "teacher", role="teacher", steps=2)
    student = run(tmp_path, "student", role="student", steps=2, init=str(teacher), teacher=str(teacher), distill=True)
    refiner = run(tmp_path, "refiner", role="refiner", steps=1, init=str(student))
    model, meta = load_model(student)
    assert meta["kind"] == "jscc" and hasattr(model, "transmit")
    assert load_model(refiner)[1]["kind"] == "refiner"
    record = json.loads(load_state(student)[1]["training"])
    assert record["steps"] == 2 and record["options"]["distill"]
    assert "user0" in record["history"][-1]["test_psnr_awgn10"]


def test_resume_continues_the_step_count(tmp_path):
    run(tmp_path, "t", role="teacher", steps=1)
    out = run(tmp_path, "t", role="teacher", steps=3)
    record = json.loads(load_state(out)[1]["training"])
    assert [h["step"] for h in record["history"]] == [1, 3]
    assert np.isfinite(record["history"][-1]["test_psnr_awgn10"]["user1"])
