"""The translation commands end to end on a tiny corpus: train, resume, evaluate, translate.

Runs in-process (``main(argv)``) where it can, so the whole file stays in the tens of seconds;
the stdin→stdout translate test and the sacrebleu command line are real subprocesses.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from apps.translation import evaluate as evaluate_cmd
from apps.translation import train as train_cmd
from common.errors import cli

ROOT = Path(__file__).resolve().parents[1]
# A toy language pair: German-like words mapped one to one onto English-like words, same order.
LEXICON = {"der": "the", "hund": "dog", "katze": "cat", "läuft": "runs", "schläft": "sleeps", "im": "in the",
           "park": "park", "haus": "house", "ein": "a", "mann": "man", "frau": "woman", "sieht": "sees",
           "rot": "red", "blau": "blue", "groß": "big", "klein": "small"}


def toy_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    words = sorted(LEXICON)
    out = []
    for _ in range(n):
        de = [rng.choice(words) for _ in range(rng.randint(2, 6))]
        out.append((" ".join(de).capitalize() + ".", " ".join(LEXICON[w] for w in de).capitalize() + "."))
    return out


def write_multi30k(folder: Path, sizes=(300, 30, 30)) -> Path:
    """Toy data in the Multi30k raw layout (gzipped train/val/test_2016_flickr .de/.en)."""
    folder.mkdir(parents=True, exist_ok=True)
    for (split, n), seed in zip(zip(("train", "val", "test_2016_flickr"), sizes), (0, 1, 2)):
        pairs = toy_pairs(n, seed)
        for lang, col in (("de", 0), ("en", 1)):
            with gzip.open(folder / f"{split}.{lang}.gz", "wt", encoding="utf-8") as fh:
                fh.writelines(p[col] + "\n" for p in pairs)
    return folder


def tiny_args(data: Path, out: Path, steps: int = 40) -> list[str]:
    return ["--config", str(ROOT / "configs/translation/multi30k.yaml"), f"out={out}", f"steps={steps}",
            "data.source=files", f"data.dir={data}", "tokenizer.vocab_size=120", "tokenizer.min_frequency=1",
            "model.d_model=32", "model.heads=2", "model.enc_layers=1", "model.dec_layers=1", "model.d_ff=64",
            "model.dropout=0.0", "train.max_tokens=300", "train.log_every=10", "train.eval_every=20",
            "train.eval_sentences=10", "train.checkpoint_every=20", "train.progress=false", "optim.warmup=5",
            "optim.lr=0.003", "decode.beam=2", "decode.batch_size=16", "probes.every=2", "probes.window=5"]


def run_cli(main, argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        cli(main, argv)
    return exc.value.code, capsys.readouterr().err


def records(run: Path, name: str = "metrics.jsonl") -> list[dict]:
    return [json.loads(x) for x in (run / name).read_text().splitlines()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("tr")
    data = write_multi30k(base / "data")
    run = base / "run"
    train_cmd.main(tiny_args(data, run, steps=60))
    return data, run


def test_training_lowers_the_loss_and_writes_the_run(trained):
    _, run = trained
    losses = [r["loss"] for r in records(run) if "loss" in r]
    assert len(losses) == 6 and losses[-1] < 0.7 * losses[0]
    valid = [r for r in records(run) if "valid_bleu" in r]
    assert [r["step"] for r in valid] == [20, 40, 60] and valid[-1]["valid_loss"] < valid[0]["valid_loss"]
    probes = records(run, "probes.jsonl")
    assert {p["model"] for p in probes} == {"encoder", "decoder"}
    assert all(0.0 <= p["dead_frac"] <= 1.0 for p in probes)
    assert json.loads((run / "leakylab.json").read_text())["app"] == "translation"
    assert (run / "tokenizer.json").is_file() and (run / "checkpoints/step_00000060/meta.json").is_file()


def test_resume_continues_at_the_right_step(trained, tmp_path):
    data, _ = trained
    run = tmp_path / "run"
    train_cmd.main(tiny_args(data, run, steps=20))
    assert max(r["step"] for r in records(run)) == 20
    train_cmd.main(tiny_args(data, run, steps=40))  # same command, more steps: extends the run
    steps = [r["step"] for r in records(run) if "loss" in r]
    assert steps == [10, 20, 30, 40]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000020", "step_00000040"]


def test_resume_with_another_config_is_refused(trained, tmp_path, capsys):
    data, _ = trained
    run = tmp_path / "run"
    train_cmd.main(tiny_args(data, run, steps=10))
    code, err = run_cli(train_cmd.main, tiny_args(data, run, steps=10) + ["model.d_ff=128"], capsys)
    assert code == 2 and "model.d_ff" in err and err.count("\n") == 1


def test_eval_json_bleu_equals_the_sacrebleu_command_line(trained):
    data, run = trained
    result = evaluate_cmd.evaluate(str(run), "test_2016_flickr")
    saved = json.loads((run / "eval.json").read_text())
    assert saved == json.loads(json.dumps(result))
    for key in ("app", "step", "split", "num_sentences", "bleu", "chrf", "bleu_signature", "chrf_signature"):
        assert key in saved
    assert saved["split"] == "test" and saved["num_sentences"] == 30 and saved["step"] == 60
    assert saved["decoding"]["beam"] == 2 and saved["bleu"] > 1.0
    hyp = run / saved["hypotheses"]
    assert len(hyp.read_text(encoding="utf-8").splitlines()) == 30
    ref = data / "test_2016_flickr.en.gz"
    plain = Path(run / "ref.en")
    plain.write_bytes(gzip.decompress(ref.read_bytes()))
    proc = subprocess.run([sys.executable, "-m", "sacrebleu", str(plain), "-i", str(hyp), "-m", "bleu", "chrf",
                           "-w", "6"], capture_output=True, text=True, check=True)
    bleu, chrf = json.loads(proc.stdout)  # one JSON object per metric, with its signature
    assert bleu["score"] == pytest.approx(saved["bleu"], abs=1e-5)
    assert chrf["score"] == pytest.approx(saved["chrf"], abs=1e-5)
    assert (bleu["signature"], chrf["signature"]) == (saved["bleu_signature"], saved["chrf_signature"])


def test_translate_cli_reads_stdin_and_writes_stdout(trained):
    _, run = trained
    lines = ["Der hund läuft.", "", "Ein mann sieht die katze."]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "apps.translation.translate", "--run", str(run), "--beam", "1"],
                          input="\n".join(lines) + "\n", capture_output=True, text=True, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.split("\n")
    assert len(out) == 4 and out[3] == "" and out[1] == ""
    assert out[0] and out[2]
    from apps.translation.decode import translate_texts
    from apps.translation.runtime import load_trained

    loaded = load_trained(str(run))
    assert translate_texts(loaded.model, loaded.tokenizer, lines, loaded.cfg.decode, beam=1) == out[:3]
    bad = subprocess.run([sys.executable, "-m", "apps.translation.translate", "--run", str(run)],
                         input=b"Der hund.\n\xff kaputt\n", capture_output=True, env=env, cwd=ROOT)
    assert bad.returncode == 2 and bad.stderr.decode() == (
        "error: standard input line 2 is not UTF-8 text; re-encode the input as UTF-8\n")


def test_bad_inputs_end_with_one_line_and_exit_2(trained, tmp_path, capsys):
    data, run = trained
    bad = write_multi30k(tmp_path / "unequal")
    with gzip.open(bad / "train.en.gz", "at", encoding="utf-8") as fh:
        fh.write("One line too many.\n")
    code, err = run_cli(train_cmd.main, tiny_args(bad, tmp_path / "r1"), capsys)
    assert code == 2 and "differ in length" in err and "301 lines" in err and err.count("\n") == 1

    enc = write_multi30k(tmp_path / "latin1")
    with gzip.open(enc / "train.de.gz", "rb") as fh:
        lines = fh.read().split(b"\n")
    lines[4] = "Straße".encode("latin-1")
    (enc / "train.de.gz").write_bytes(gzip.compress(b"\n".join(lines)))
    code, err = run_cli(train_cmd.main, tiny_args(enc, tmp_path / "r2"), capsys)
    assert code == 2 and "line 5 is not UTF-8" in err and err.count("\n") == 1

    empty = tmp_path / "nothing"
    empty.mkdir()
    code, err = run_cli(train_cmd.main, tiny_args(empty, tmp_path / "r3"), capsys)
    assert code == 2 and "no train data" in err and err.count("\n") == 1

    code, err = run_cli(evaluate_cmd.main, ["--run", str(tmp_path / "missing")], capsys)
    assert code == 2 and "does not exist" in err
    code, err = run_cli(evaluate_cmd.main, ["--run", str(run), "--split", "dev2017"], capsys)
    assert code == 2 and "unknown split" in err
    code, err = run_cli(train_cmd.main, tiny_args(data, tmp_path / "r4") + ["model.activation=swish"], capsys)
    assert code == 2 and "model.activation" in err


def _weights(run: Path, step: int) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run / "checkpoints" / f"step_{step:08d}" / "models" / "model.safetensors"))


def test_killed_run_resumes_bit_identically(trained, tmp_path):
    """Kill the process right after step 25 (checkpoint at 20), re-run the same command: weights and
    logged losses at step 40 equal an uninterrupted run's exactly (CPU, one thread, fixed seed)."""
    data, _ = trained
    args = lambda out: tiny_args(data, out, steps=40) + ["model.dropout=0.1"]  # noqa: E731 - dropout RNG too
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    train_cmd.main(args(whole))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LEAKYLAB_FAULT": "after_step:25"}
    proc = subprocess.run([sys.executable, "-m", "apps.translation.train", *args(killed)], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr[-2000:]  # SIGKILL, like a machine dying
    assert max(r["step"] for r in records(killed)) == 20 or (killed / "checkpoints/step_00000020").is_dir()
    train_cmd.main(args(killed))
    a, b = _weights(whole, 40), _weights(killed, 40)
    assert a.keys() == b.keys() and all(torch_equal(a[k], b[k]) for k in a)
    strip = lambda recs: [{k: v for k, v in r.items() if k not in ("time", "tokens_per_s")} for r in recs]  # noqa: E731
    assert strip(records(killed)) == strip(records(whole))


def torch_equal(x, y) -> bool:
    import torch

    return torch.equal(x, y)


def test_divergence_stops_with_one_line(trained, tmp_path, capsys):
    data, _ = trained
    argv = tiny_args(data, tmp_path / "nan", steps=40) + ["optim.lr=1e30", "optim.clip_norm=0", "optim.warmup=0",
                                                          "train.check_every=5", "train.checkpoint_every=5"]
    code, err = run_cli(train_cmd.main, argv, capsys)
    assert code == 2 and "training diverged" in err and err.count("\n") == 1


def test_torch_reference_trains_and_evaluates_the_same_way(trained, tmp_path, capsys):
    data, _ = trained
    run = tmp_path / "torch"
    ref = ["model.impl=torch", "model.activation=relu", "model.act_params={}"]
    train_cmd.main(tiny_args(data, run, steps=20) + ref)
    losses = [r["loss"] for r in records(run) if "loss" in r]
    assert losses[-1] < losses[0]
    result = evaluate_cmd.evaluate(str(run), "test", beam=2)
    assert result["num_sentences"] == 30 and result["step"] == 20
    code, err = run_cli(train_cmd.main, tiny_args(data, tmp_path / "bad", steps=20) + ["model.impl=torch"], capsys)
    assert code == 2 and "model.activation" in err  # the config's leaky_relu cannot go into nn.Transformer


def test_remedies_run_on_the_ffn_units(trained, tmp_path):
    data, _ = trained
    run = tmp_path / "remedies"
    train_cmd.main(tiny_args(data, run, steps=30) + [
        "model.activation=relu", "model.act_params={}", "remedies.bias_init=0.1", "remedies.weight_decay=0.01",
        "remedies.warming_gamma=0.1", "remedies.warming_steps=10", "remedies.kick_every=10", "remedies.redo_every=15",
        "remedies.redo_tau=0.5", "probes.every=1", "probes.window=5"])
    recs = records(run)
    assert any("recycled" in r for r in recs) and any("kicked" in r for r in recs)
    layers = {(p["model"], p["layer"]) for p in records(run, "probes.jsonl")}
    assert layers == {("encoder", "0.ffn.act"), ("decoder", "0.ffn.act")}
