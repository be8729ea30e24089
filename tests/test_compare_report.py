"""The report assembled from fake run directories: numbers, tables, embedded images, no URLs."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image as PILImage

from apps.compare.analysis import analyse
from apps.compare.collect import read_cell
from apps.compare.config import CompareConfig, load_preset
from apps.compare.matrix import Cell, build_matrix, check_cells
from apps.compare.report import write_report
from common.config import config_from_dict

FID_BASE = {0: 30.1, 1: 25.4, 2: 34.8}
FID_SHIFT = {0: -3.2, 1: -2.6, 2: -3.9}  # leaky G: a real, consistent improvement
BLEU = {0: 41.0, 1: 39.5, 2: 42.2}
BLEU_NOISE = {0: 0.3, 1: -0.4, 2: 0.2}  # leaky FFN: nothing real


def preset(tmp: Path) -> CompareConfig:
    return config_from_dict(CompareConfig, {
        "title": "fake", "out": str(tmp / "runs"), "report": str(tmp / "report"), "seeds": [0, 1, 2],
        "studies": {
            "gan": {"app": "gan", "config": "configs/gan/digits.yaml", "steps": 40, "baseline": "relu",
                    "variants": {"relu": {}, "leaky_G": {"model.g_act": "leaky_relu", "model.g_alpha": 0.2}}},
            "mt": {"app": "translation", "config": "configs/translation/embedded.yaml", "steps": 30,
                   "baseline": "relu", "metrics": ["bleu", "chrf", "dead_frac.*"],
                   "variants": {"relu": {}, "leaky": {"model.activation": "leaky_relu",
                                                      "model.act_params": {"alpha": 0.2}}}},
        },
    })


def fake_cell(cell: Cell, complete: bool = True) -> None:
    """A run directory as the apps write it (docs/run-directory.md), with values that depend on the variant."""
    run = cell.run_dir
    (run / "samples").mkdir(parents=True)
    (run / "leakylab.json").write_text(json.dumps({"app": cell.app, "format": 1}))
    # data that cannot be loaded here: the examples must fall back to the files beside the hypotheses
    (run / "config.yaml").write_text(f"seed: {cell.seed}\nsteps: {cell.steps}\n"
                                     f"data: {{source: files, dir: {run / 'nowhere'}}}\n")
    leaky = not cell.variant.startswith("relu")
    models = ["G", "D"] if cell.app == "gan" else ["encoder", "decoder"]
    with open(run / "metrics.jsonl", "w") as fh:
        for step in range(0, cell.steps + 1, 10):
            rec = {"step": step, "time": 1000.0 + step * 0.1, "lr": 2e-4, "loss_g": 2.0 - step / 100 + cell.seed * 0.1,
                   "loss_d": 1.0 + step / 200}
            if cell.app == "translation":
                rec = {"step": step, "time": 1000.0 + step * 0.1, "lr": 1e-3, "loss": 5.0 - step / 20,
                       "tokens_per_s": 2000.0}
            fh.write(json.dumps(rec) + "\n")
    with open(run / "probes.jsonl", "w") as fh:
        for step in range(10, cell.steps + 1, 10):
            for model in models:
                for i, layer in enumerate(["block1.act", "block2.act"]):
                    dead = (0.02 if leaky else 0.3 + 0.05 * cell.seed) * (i + 1) * step / cell.steps
                    fh.write(json.dumps({"step": step, "model": model, "layer": layer, "kind": "relu",
                                         "dead_frac": dead, "dormant_frac": dead, "grad_sparsity": 0.5,
                                         "act_rms": 1.0, "grad_rms": 1e-3 * (i + 1)}) + "\n")
                if model == "G":  # the output tanh: no dead-unit story, must stay out of the means
                    fh.write(json.dumps({"step": step, "model": "G", "layer": "out.tanh", "kind": "tanh",
                                         "dead_frac": 0.9, "dormant_frac": 0.9, "grad_sparsity": 0.0,
                                         "act_rms": 0.5, "grad_rms": 1e-2}) + "\n")
    color = (200, 30, 30) if leaky else (30, 30, 200)
    PILImage.new("RGB", (16, 16), color).save(run / "samples" / "final.png")
    if complete:
        if cell.app == "gan":
            fid = FID_BASE[cell.seed] + (FID_SHIFT[cell.seed] if leaky else 0.0)
            ev = {"app": "gan", "step": cell.steps, "extractor": {"name": "classifier", "hash": "abc123def456",
                  "heldout_accuracy": 0.985}, "num_real": 500, "num_fake": 500, "fid": fid, "kid_mean": fid / 1000,
                  "kid_std": 0.001, "fid_floor": 2.0, "classes_covered": 10, "class_kl": 0.05, "confident_share": 0.9}
        else:
            bleu = BLEU[cell.seed] + (BLEU_NOISE[cell.seed] if leaky else 0.0)
            ev = {"app": "translation", "step": cell.steps, "split": "test", "num_sentences": 3, "bleu": bleu,
                  "chrf": bleu + 20, "bleu_signature": "nrefs:1|bs", "chrf_signature": "nrefs:1|c",
                  "decoding": {"beam": 5, "length_penalty": 1.0}}
            ev["hypotheses"] = "hyp.test.de"
            (run / "hyp.test.de").write_text(f"ein Hund {cell.variant}\neine Katze\nder Mann\n")
            (run / "sources.test.txt").write_text("a dog\na cat\nthe man\n")
        (run / "eval.json").write_text(json.dumps(ev))
    cell.dir.joinpath("cell.json").write_text(json.dumps({"returncode": 0, "train_s": 20.0, "eval_s": 5.0,
                                                          "wall_s": 25.0, "resumed": False}))


class _Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.srcs: list[str] = []
        self.hrefs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if "src" in a:
            self.srcs.append(a["src"])
        if "href" in a:
            self.hrefs.append(a["href"])

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[CompareConfig, dict, Path]:
    tmp = tmp_path_factory.mktemp("cmp")
    cfg = preset(tmp)
    cells = build_matrix(cfg)
    for c in cells:
        # One translation cell never finished: the report must still be written, without it.
        fake_cell(c, complete=not (c.study == "mt" and c.variant == "leaky" and c.seed == 2))
    env = {"python": "3.11", "torch": "x", "device": "CPU (fake)", "cpu_count": 2, "packages": {}}
    summary = write_report(cfg, cells, env, "configs/compare/fake.yaml")
    return cfg, summary, Path(cfg.report)


def test_summary_holds_the_statistics(written: tuple) -> None:
    cfg, summary, root = written
    on_disk = json.loads((root / "summary.json").read_text())
    assert on_disk["format"] == 1 and on_disk["studies"][0]["name"] == "gan"
    gan = summary["studies"][0]
    relu = next(v for v in gan["variants"] if v["name"] == "relu")
    # G's relu layers end at 0.3·(1, 2) + 0.05·seed dead; the tanh layer (0.9) is not counted
    assert relu["metrics"]["dead_frac.G"]["values"]["0"] == pytest.approx(0.45)
    assert relu["metrics"]["fid"]["values"] == {str(s): v for s, v in FID_BASE.items()}
    assert relu["metrics"]["fid"]["mean"] == pytest.approx(sum(FID_BASE.values()) / 3)
    fid = next(c for c in gan["comparisons"] if c["metric"] == "fid")
    assert fid["diff"] == pytest.approx(sum(FID_SHIFT.values()) / 3)
    assert fid["verdict"] == "better" and fid["n"] == 3
    dead = next(c for c in gan["comparisons"] if c["metric"] == "dead_frac.G")
    assert dead["verdict"] == "better"
    assert gan["dead_units"]["shows_up"] is True
    assert gan["extractor"]["name"] == "classifier"

    mt = summary["studies"][1]
    bleu = next(c for c in mt["comparisons"] if c["metric"] == "bleu")
    assert bleu["n"] == 2 and bleu["seeds"] == [0, 1]  # the unfinished seed is not paired
    assert bleu["verdict"] == "inconclusive" and bleu["delta"] == 1.0  # 2 seeds: neither shown
    assert fid["delta"] == pytest.approx(0.05 * sum(FID_BASE.values()) / 3)  # 5% of the baseline's FID
    # no cell logged an eval curve: convergence is not shown, so the verdicts read as learning speed
    assert mt["budget"]["learning_speed"] and mt["budget"]["checks"][0]["status"] == "no curve"
    assert {c["metric"] for c in mt["comparisons"]} == {"bleu", "chrf", "dead_frac.encoder", "dead_frac.decoder"}
    statuses = {r["key"]: r["status"] for r in summary["cells"]}
    assert statuses["mt/leaky/seed2"] == "not run" and statuses["gan/relu/seed0"] == "complete"


def test_html_is_self_contained_with_tables_and_embedded_images(written: tuple) -> None:
    _, summary, root = written
    page = (root / "report.html").read_text()
    scan = _Scan()
    scan.feed(page)
    assert scan.tags.count("table") >= 8
    assert len(scan.srcs) >= 8 and all(s.startswith("data:image/png;base64,") for s in scan.srcs)
    assert all(h.startswith("#") for h in scan.hrefs)
    assert "http://" not in page and "https://" not in page
    text = " ".join(scan.text)
    assert "FID [classifier]" in text and "Inception" in text
    assert "inconclusive at this budget" in text and "learning speed at this budget, not final quality" in text
    assert "python -m apps.gan.train --config configs/gan/digits.yaml" in text
    assert "tuned for ReLU" in text and "Environment" in text


def test_markdown_references_figures_that_exist(written: tuple) -> None:
    _, _, root = written
    md = (root / "report.md").read_text()
    assert "| metric | variant | n | mean | 95% CI |" in md
    refs = [line.split("](", 1)[1].split(")", 1)[0] for line in md.splitlines() if "![" in line for _ in [0]]
    assert refs and all((root / r).is_file() for r in refs)
    assert "figures/gan_samples_leaky_G.png" in md
    assert "ein Hund leaky" in md and "| a dog |" in md  # translation examples side by side


def test_cells_scored_with_another_extractor_are_not_pooled(tmp_path: Path) -> None:
    cfg = preset(tmp_path)
    cells = [c for c in build_matrix(cfg) if c.study == "gan"]
    for c in cells:
        fake_cell(c)
    odd = cells[-1]  # leaky_G seed 2: evaluated after the extractor changed
    ev = json.loads((odd.run_dir / "eval.json").read_text())
    ev.update(extractor={"name": "classifier", "hash": "fff000", "heldout_accuracy": 0.99}, fid=7.9,
              confident_share=0.0)
    (odd.run_dir / "eval.json").write_text(json.dumps(ev))
    gan = analyse(cfg, [read_cell(c) for c in cells], {})["studies"][0]
    assert "1 cell(s) were evaluated with another feature extractor" in gan["warnings"][0]
    assert gan["extractor"]["hash"] == "abc123def456"
    leaky = next(v for v in gan["variants"] if v["name"] == "leaky_G")
    assert set(leaky["metrics"]["fid"]["values"]) == {"0", "1"}  # seed 2's FID is left out
    assert set(leaky["metrics"]["confident_share"]["values"]) == {"0", "1"}  # and its class statistics
    assert set(leaky["metrics"]["dead_frac.G"]["values"]) == {"0", "1", "2"}  # probes do not depend on it
    assert next(c for c in gan["comparisons"] if c["metric"] == "fid")["n"] == 2


def test_fid_below_the_floor_is_flagged_per_variant_and_seed(tmp_path: Path) -> None:
    cfg = preset(tmp_path)
    cells = [c for c in build_matrix(cfg) if c.study == "gan"]
    for c in cells:
        fake_cell(c)
    gan = analyse(cfg, [read_cell(c) for c in cells], {})["studies"][0]
    assert not any("floor" in w for w in gan["warnings"])  # FIDs 21–35 against a floor of 2
    copier = next(c for c in cells if c.variant == "leaky_G" and c.seed == 1)
    ev = json.loads((copier.run_dir / "eval.json").read_text())
    (copier.run_dir / "eval.json").write_text(json.dumps({**ev, "fid": 1.5}))
    gan = analyse(cfg, [read_cell(c) for c in cells], {})["studies"][0]
    flagged = [w for w in gan["warnings"] if "floor" in w]
    assert len(flagged) == 1 and flagged[0].startswith("leaky_G: FID below the real-vs-real floor on seed(s) 1:")


def test_report_of_nothing_finished_is_still_written(tmp_path: Path) -> None:
    cfg = preset(tmp_path)
    summary = write_report(cfg, build_matrix(cfg), {"packages": {}}, "x.yaml")
    assert all(s["comparisons"] == [] for s in summary["studies"])
    assert "No cell of this study is complete yet" in (Path(cfg.report) / "report.md").read_text()


def test_shipped_presets_load(monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parents[1] / "configs" / "compare"
    monkeypatch.chdir(root.parents[1])  # presets name app configs relative to the project root
    presets = sorted(root.glob("*.yaml"))
    assert {p.stem for p in presets} >= {"quick", "dying", "standard"}
    for p in presets:
        cfg = load_preset(p)
        cells = build_matrix(cfg)
        assert cells and all(c.baseline in cfg.studies[c.study].variants or "@" in c.variant for c in cells)
        for c in cells:  # every app config a preset names exists
            assert (root.parents[1] / c.app_config).is_file(), (p.name, c.app_config)
        check_cells(cells)  # and every variant's overrides are keys and values its app accepts


def test_dying_preset_runs_the_plain_dcgan_recipe_it_was_calibrated_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """digits.yaml's later additions (code, DiffAugment, decay, R1) must stay off in the control."""
    from apps.gan.config import GanConfig
    from common.config import load_config

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    cell = build_matrix(load_preset(root / "configs" / "compare" / "dying.yaml"))[0]
    args = [a for a in cell.train_argv()[5:] if not a.startswith("out=")]
    cfg = load_config(GanConfig, cell.app_config, args, app="gan")
    recipe = (cfg.model.latent_classes, cfg.train.augment, cfg.optim.schedule, cfg.optim.r1_gamma)
    assert recipe == (0, 0.0, "constant", 0.0)
    assert cfg.model.g_batch_norm is False and cfg.steps == 600


def _story_study(verdict: str, n: int) -> dict:
    """A study summary with just what dead_unit_story reads: a baseline that loses half its units."""
    metric = {"key": "dead_frac.G", "tested": True}
    return {
        "baseline": "relu",
        "metrics": [metric],
        "variants": [
            {"name": "relu", "metrics": {"dead_frac.G": {"mean": 0.5}}, "dead_by_layer": {"G": {"act1": 0.0, "act2": 1.0}}},
            {"name": "leaky", "metrics": {"dead_frac.G": {"mean": 0.0}}},
        ],
        "comparisons": [{"metric": "dead_frac.G", "variant": "leaky", "verdict": verdict, "n": n}],
    }


def test_dead_unit_story_separates_shown_untested_and_absent() -> None:
    from apps.compare.analysis import dead_unit_story

    shown = dead_unit_story(_story_study("better", 3))
    assert shown["shows_up"] and "measurably fewer with leaky (0.0%)" in shown["lines"][0]
    one_seed = dead_unit_story(_story_study("untestable", 1))
    assert not one_seed["shows_up"] and one_seed["verdict"].startswith("cannot be tested with one seed")
    assert "act2 100%" in one_seed["lines"][0] and "run more seeds" in one_seed["lines"][0]
    absent = dead_unit_story(_story_study("no detectable difference", 3))
    assert absent["verdict"] == "does not show up at this budget"
    assert "no variant reduces that measurably" in absent["lines"][0]


def test_a_learning_rate_sweep_reports_each_rate_against_its_own_baseline(tmp_path: Path) -> None:
    """With lr_sweep there is no arm named after the baseline, only relu@lr…: the report (and the
    dead-unit story, which once looked for an arm called 'relu' and crashed) pairs by rate."""
    cfg = config_from_dict(CompareConfig, {
        "title": "sweep", "out": str(tmp_path / "runs"), "report": str(tmp_path / "report"), "seeds": [0, 1, 2],
        "studies": {"gan": {"app": "gan", "config": "configs/gan/digits.yaml", "steps": 40, "baseline": "relu",
                            "variants": {"relu": {}, "leaky_G": {"model.g_act": "leaky_relu"}},
                            "lr_sweep": {"optim.lr_g": [1e-4, 4e-4]}}},
    })
    cells = build_matrix(cfg)
    for c in cells:
        fake_cell(c)
    summary = write_report(cfg, cells, {"packages": {}}, "configs/compare/sweep.yaml")
    (gan,) = summary["studies"]
    pairs = {(c["variant"], c["baseline"]) for c in gan["comparisons"]}
    assert pairs == {("leaky_G@lr0.0001", "relu@lr0.0001"), ("leaky_G@lr0.0004", "relu@lr0.0004")}
    fid = {c["variant"]: c for c in gan["comparisons"] if c["metric"] == "fid"}
    assert all(c["diff"] == pytest.approx(sum(FID_SHIFT.values()) / 3) for c in fid.values())
    story = gan["dead_units"]
    assert story["shows_up"]  # relu's fake units die, leaky's do not: at both rates
    for rate in ("lr0.0001", "lr0.0004"):
        (line,) = [x for x in story["lines"] if x.startswith(f"G at {rate}:")]
        assert f"baseline 'relu@{rate}'" in line and f"measurably fewer with leaky_G@{rate}" in line
    report = (tmp_path / "report" / "report.md").read_text()
    assert "leaky_G@lr0.0004 vs relu@lr0.0004" in report
