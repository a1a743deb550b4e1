"""``imdiag doctor --url``: parse the options, run the instruments, render the hypotheses. Nothing
is measured or judged here."""

from __future__ import annotations

import time
from typing import Annotated

import typer

import imdiag.cli.options as opt
from imdiag.cli.common import console, fail, run_async, write_json, write_text
from imdiag.cli.files import check_writable, read_json
from imdiag.cli.probe import probe_settings
from imdiag.core.doctor import DoctorResult, DoctorSettings, TapEvidence, exit_code, tap_evidence
from imdiag.core.errors import ExitCode, ImdiagError
from imdiag.core.probe_frames import PROBE_TYPE
from imdiag.core.units import parse_limit
from imdiag.core.wire import Encoder
from imdiag.render.doctor import doctor_renderables
from imdiag.render.html import doctor_html
from imdiag.render.json_report import doctor_to_dict
from imdiag.render.markdown import doctor_markdown


def _settings(url: str, capture: str | None, expect_max_payload: str | None, tap_report: str | None,
              event: str, ack: bool, path: str, auth: str | None, header: list[str] | None, insecure: bool,
              timeout: float, max_bytes: str, encoder: Encoder) -> tuple[DoctorSettings, TapEvidence | None]:
    expected = parse_limit(expect_max_payload) if expect_max_payload is not None else None
    probe = probe_settings(url, path, event, None, auth, header, insecure, timeout, max_bytes, PROBE_TYPE, ack,
                           capture, encoder)
    tap = tap_evidence(read_json(tap_report, "tap report"), f"tap report {tap_report}") if tap_report else None
    return DoctorSettings(probe, expected, tap_report), tap


def _finish(result: DoctorResult, json_path: str | None, markdown_path: str | None, html_path: str | None) -> None:
    out = console()
    for renderable in doctor_renderables(result):
        out.print(renderable)
    written = []
    try:
        for path, write in ((json_path, lambda p: write_json(p, doctor_to_dict(result))),
                            (markdown_path, lambda p: write_text(p, doctor_markdown(result), "Markdown report")),
                            (html_path, lambda p: write_text(p, doctor_html(result), "HTML report"))):
            if path:
                write(path)
                written.append(path)
    except ImdiagError as exc:
        raise fail(str(exc), exc.exit_code) from None
    for path in written:
        console(stderr=True).print(f"report written to {path}")
    code = exit_code(result)
    if code is ExitCode.INTERRUPTED:
        raise fail("interrupted (Ctrl-C): the results above are partial", code)
    if code is ExitCode.TARGET:
        unprobed = result.unprobed
        why = unprobed.error if unprobed is not None else "; ".join(
            f"{t.transport.value}: the limit could not be measured: {t.stopped}"
            for t in (result.probe.undiagnosed if result.probe is not None else ()))
        raise fail(why or "the master could not be probed", code)
    raise typer.Exit(int(code))


def doctor_command(
    url: Annotated[str, typer.Option("--url", metavar="URL",
                                     help="The master, with the namespace as path: http://host:3000/worker.")],
    capture: Annotated[
        str | None, typer.Option("--capture", metavar="FILE", help="The messages your worker emits (a JSON "
                                 "message, a JSON array or JSON Lines): sized against the measured limits, never sent.")
    ] = None,
    expect_max_payload: Annotated[
        str | None, typer.Option("--expect-max-payload", metavar="SIZE", help="The maxHttpBufferSize the code on "
                                 "disk sets (e.g. 10MB): is it what the running process has?")
    ] = None,
    event: opt.EventOption = "message",
    ack: Annotated[bool, typer.Option("--ack", help="The master's handler calls its ack callback: check that it "
                                      "acknowledges a small message (and prove each probe's arrival by it).")] = False,
    tap_report: Annotated[
        str | None, typer.Option("--tap-report", metavar="FILE", help="An `imdiag tap --json` report: which of the "
                                 "worker's message types crossed the wire, and what became of them.")
    ] = None,
    path: opt.PathOption = "/socket.io/",
    auth: opt.AuthOption = None,
    header: opt.HeaderOption = None,
    insecure: opt.InsecureOption = False,
    timeout: opt.TimeoutOption = 10.0,
    max_bytes: Annotated[str, typer.Option("--max-bytes", metavar="SIZE", help="Never send a frame larger than this.")] = "16MiB",
    encoder: opt.EncoderOption = Encoder.NODE,
    json_path: opt.JsonOption = None,
    markdown_path: Annotated[str | None, typer.Option("--markdown", metavar="FILE",
                                                      help="Write the hypotheses as Markdown to this file.")] = None,
    html_path: opt.HtmlOption = None,
) -> None:
    """Each hypothesis of the incident confirmed or ruled out with evidence, safely: exit 0 no problem
    found, 1 at least one confirmed, 2 usage, 3 unreachable."""
    # Imported here for start-up time: the runner loads aiohttp.
    from imdiag.runners.doctor import doctor, interrupted_result
    from imdiag.runners.probe import ProbeProgress

    try:
        settings, tap = _settings(url, capture, expect_max_payload, tap_report, event, ack, path, auth, header,
                                  insecure, timeout, max_bytes, encoder)
        for file, option in ((json_path, "--json"), (markdown_path, "--markdown"), (html_path, "--html")):
            check_writable(file, option)
    except ImdiagError as exc:
        raise fail(str(exc), exc.exit_code) from None

    progress = ProbeProgress()
    start = time.monotonic()
    try:
        result = run_async(lambda: doctor(settings, tap, progress))
    except KeyboardInterrupt:
        result = interrupted_result(settings, tap, progress, time.monotonic() - start)
    _finish(result, json_path, markdown_path, html_path)
