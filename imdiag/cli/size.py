"""``imdiag size FILE``: each captured message's sizes by every measure, against a limit. No network."""

from __future__ import annotations

from typing import Annotated

import typer

from imdiag.cli.common import console, fail
from imdiag.cli.options import LIMIT_HELP, parse_event, parse_namespace
from imdiag.core.captures import capture_namespace, open_capture
from imdiag.core.errors import ImdiagError
from imdiag.core.sizing import MessageSize, Recommendation, list_profile, recommend, size_of
from imdiag.core.units import format_size, parse_limit
from imdiag.core.wire import Encoder
from imdiag.render.replay import size_renderables


def _sizes(file: str, limit: int, namespace: str | None, event: str) -> tuple[list[MessageSize], Recommendation | None]:
    capture = open_capture(file)
    # The rule of every command: --namespace, else the capture's meta, else its first record's.
    message_ns = capture_namespace(capture, namespace)
    sizes: list[MessageSize] = []
    largest: tuple[int, str, int] | None = None
    profile = None
    for captured in capture.messages():
        size = size_of(captured, event=event, namespace=message_ns)
        sizes.append(size)
        frame = size.of(Encoder.NODE).frame_bytes
        if not size.of(Encoder.NODE).error and (largest is None or frame > largest[2]):
            largest = (captured.index, captured.type, frame)
            profile = list_profile(captured, encoder=Encoder.NODE, event=event, namespace=message_ns)
    if largest is None:
        return sizes, None
    return sizes, recommend(limit, largest[2], f"message #{largest[0]} ({largest[1]}, node encoder)", profile)


def size_command(
    file: Annotated[str, typer.Argument(metavar="FILE", help="A capture: JSON array, {meta, messages} or JSON Lines.")],
    limit: Annotated[str, typer.Option("--limit", "-l", help=f"The server limit to compare with; {LIMIT_HELP}")] = "1MB",
    namespace: Annotated[str | None, typer.Option(help="Namespace the frames are sent in (default: the capture's "
                                                  "meta.namespace, else its first record's, else /), as replay.")] = None,
    event: Annotated[str, typer.Option(help="Event for records that name none.")] = "message",
) -> None:
    """Sizes of each captured message by every measure, against a limit. No network."""
    try:
        parsed_limit = parse_limit(limit)
        ns = parse_namespace(namespace) if namespace is not None else None
        sizes, recommendation = _sizes(file, parsed_limit, ns, parse_event(event))
    except ImdiagError as exc:
        raise fail(str(exc), exc.exit_code) from None
    out = console()
    for renderable in size_renderables(sizes, parsed_limit, file, recommendation):
        out.print(renderable)
    if recommendation is not None and recommendation.largest_frame > parsed_limit:
        out.print(f"largest frame {recommendation.largest_frame:,} B is over the limit {format_size(parsed_limit)}",
                  style="dim")
