"""The CLI's promises to a user: refusals instead of surprises (one line, exit 2, nothing written),
an honest headline, a candidate list that says what became of each, progress in a CI log, an
interrupt that says what it left, accurate `rules` and `--help` text, and the plot and reports."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from graphopt.core.errors import InputGenerationError
from graphopt.formats.onnx import files as onnx_files
from graphopt.formats.onnx import sizes
from graphopt.formats.onnx.inputs import input_specs
from graphopt.passes.onnx import all_rules
from tests.test_bad_input import EXAMPLE, _assert_refused, graphopt


@pytest.fixture
def model_copy(tmp_path) -> Path:
    path = tmp_path / "in" / "m.onnx"
    path.parent.mkdir()
    path.write_bytes(EXAMPLE.read_bytes())
    return path


def test_output_equal_to_the_input_is_refused_and_the_input_untouched(model_copy):
    before = model_copy.read_bytes()
    result = graphopt("optimize", str(model_copy), "-o", str(model_copy))
    assert result.returncode == 2 and "--in-place" in result.stderr and "Traceback" not in result.stderr
    assert model_copy.read_bytes() == before
    assert sorted(p.name for p in model_copy.parent.iterdir()) == ["m.onnx"]


def test_missing_output_folder_is_an_error_unless_asked_for(tmp_path):
    out = tmp_path / "no" / "such" / "m.onnx"
    result = graphopt("optimize", "--example", "tiny-bert", "-o", str(out), "--budget", "3")
    assert result.returncode == 2 and "does not exist" in result.stderr and "--mkdir" in result.stderr
    assert not (tmp_path / "no").exists()
    made = graphopt(
        "optimize", "--example", "tiny-bert", "-o", str(out), "--budget", "3", "--policy", "greedy", "--mkdir"
    )
    assert made.returncode == 0, made.stderr
    assert out.is_file()


@pytest.mark.parametrize("budget", ["-5", "0"])
def test_non_positive_budget_is_a_usage_error(tmp_path, budget):
    out = tmp_path / "out.onnx"
    _assert_refused(
        graphopt("optimize", "--example", "tiny-bert", "-o", str(out), "--budget", budget),
        out,
        "--budget must be a positive",
    )


def test_a_directory_as_model_says_it_is_a_directory(tmp_path):
    out = tmp_path / "out.onnx"
    _assert_refused(graphopt("optimize", str(tmp_path), "-o", str(out)), out, "is a directory")


def test_sizes_that_cannot_fit_are_refused_before_allocating(tmp_path):
    out = tmp_path / "out.onnx"
    result = graphopt(
        "optimize",
        "--example",
        "tiny-bert",
        "-o",
        str(out),
        "--shape",
        "input_ids=1,100000000",
        "--shape",
        "attention_mask=1,100000000",
    )
    _assert_refused(result, out, "GiB", "memory available")
    other = [line for line in result.stderr.strip().splitlines() if not re.match(r"\[\d\d:\d\d:\d\d\] graphopt", line)]
    assert len(other) == 1, result.stderr  # the error line; no ORT log lines


def test_largest_intermediate_is_estimated_from_symbolic_shapes():
    from graphopt.formats.onnx.adapter import prepare

    model = prepare(onnx_files.load(EXAMPLE), [])
    specs = input_specs(model)
    shapes = {s.name: (1, 4096) for s in specs}
    # the attention scores [batch, 4 heads, sequence, sequence] in float32: 4 x 4096^2 x 4 B = 256 MiB
    sizes.refuse_unfit(model, specs, shapes, limit=2**29)
    with pytest.raises(InputGenerationError, match="alone needs 1.0 GiB"):
        sizes.refuse_unfit(model, specs, {s.name: (1, 8192) for s in specs}, limit=2**29)


def test_interrupt_says_nothing_written_and_exits_130(tmp_path):
    out = tmp_path / "out.onnx"
    # As from a terminal: a test runner started in the background (`cmd &`) passes SIGINT on as
    # ignored, and Python then never installs its handler.
    process = subprocess.Popen(
        [sys.executable, "-m", "graphopt", "optimize", "--example", "tiny-bert", "-o", str(out), "--budget", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    seen = []
    for line in process.stderr:  # the progress lines: interrupt as the first candidate starts
        seen.append(line)
        if "candidate '" in line:
            process.send_signal(signal.SIGINT)
            break
    _, stderr = process.communicate(timeout=60)
    stderr = "".join(seen) + stderr
    assert process.returncode == 130, stderr
    assert "interrupted: nothing written" in stderr and "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_one_headline_candidates_marked_progress_logged(tmp_path):
    out, report = tmp_path / "out.onnx", tmp_path / "r.json"
    result = graphopt("optimize", "--example", "tiny-bert", "-o", str(out), "--budget", "25", "--report", str(report))
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    text = " ".join(result.stdout.split())
    # progress: timestamped lines with counts and time left, since stderr is not a terminal here
    assert re.search(
        r"^\[\d\d:\d\d:\d\d\] graphopt \(\d+/\d+ candidates, \d+ s left\): candidate ", result.stderr, re.M
    ), result.stderr
    # attention alone makes tiny BERT >1.3x faster here (tests/test_outputs.py relies on it too)
    assert not data["kept_original"], data["reason"]
    latency = data["latency"]
    # the table, the last line and the JSON give the same measurement: output vs input, ORT defaults
    assert f"{latency['ratio']:.3f} [{latency['ci95'][0]:.3f}, {latency['ci95'][1]:.3f}]" in text
    assert f"{1 / latency['ratio']:.3f}x faster at the compiler's defaults" in text
    kept = [c for c in data["candidates"] if c["kept"]]
    assert len(kept) == 1 and kept[0]["label"] in data["reason"]
    assert all(c["dropped"] for c in data["candidates"] if not c["kept"])
    selection = data["selection"]
    if selection["confirmation"] and not data["lever_changed_choice"]:  # the headline is the second timing
        assert latency["ratio"] == selection["confirmation"]["ratio"] and latency["confirmed"]
        assert latency["selection_ratio"] == selection["selection"]["ratio"]
    settings = data["recommended_settings"]["with_settings"]
    if settings is not None:  # a second, labelled row with its own ratio and kernels
        assert "with ORT without" in text or "with ORT level" in text
        assert f"{settings['latency']['ratio']:.3f}" in text and str(settings["kernels"]) in text


def test_rules_prints_each_rules_own_first_sentence():
    result = graphopt("rules")
    assert result.returncode == 0
    lines = {
        line.split()[0]: " ".join(line.split()[1:])
        for line in result.stdout.splitlines()
        if line.startswith("  ") and line.split()
    }
    for rule in all_rules():
        assert lines.get(rule.name) == " ".join(rule.summary.split()), rule.name
        assert not rule.summary.endswith(("'s", " to", " the", ",")), rule.summary  # cut mid-sentence
    assert len({rule.summary for rule in all_rules()}) == len(all_rules())  # no family doc standing in


def test_help_renders_every_word():
    result = graphopt("--help")
    assert "needs the [zoo] extra" in " ".join(result.stdout.split())


@pytest.mark.slow
def test_plot_and_html_report(tmp_path):
    plot, html, md = tmp_path / "ops.png", tmp_path / "r.html", tmp_path / "r.md"
    result = graphopt(
        "optimize",
        "--example",
        "tiny-bert",
        "-o",
        str(tmp_path / "o.onnx"),
        "--budget",
        "10",
        "--policy",
        "greedy",
        "--plot",
        str(plot),
        "--report",
        str(html),
    )
    assert result.returncode == 0, result.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = html.read_text()
    assert "<table>" in page and "data:image/png;base64," in page and "ORT kernels" in page
    result = graphopt(
        "optimize",
        "--example",
        "tiny-bert",
        "-o",
        str(tmp_path / "o.onnx"),
        "--budget",
        "3",
        "--policy",
        "greedy",
        "--report",
        str(md),
    )
    assert result.returncode == 0 and "| ORT kernels |" in md.read_text()


def test_report_with_an_unknown_suffix_is_refused_before_work(tmp_path):
    out = tmp_path / "out.onnx"
    _assert_refused(
        graphopt("optimize", "--example", "tiny-bert", "-o", str(out), "--report", str(tmp_path / "r.txt")),
        out,
        ".json, .md or .html",
    )
