"""How a tool is declared: one decorator that names it, logs it, maps its errors, and keeps its schema tight.

Every tool of this server is registered through `register`, which
- takes the tool's name from the function and its description from the docstring, cleaned of indentation
  (so it reads the same on every Python version);
- runs the body inside `tool_call`: one log line per call, and every failure turned into a `ToolError`
  the model can read (a crash says so without leaking its text);
- publishes a compact schema (see `compact_schema`) with `additionalProperties: false`, because
  `PixVerseServer.call_tool` refuses unknown arguments by name before the body runs (an argument this
  version lacks, such as a guessed `dry_run`, must never be dropped silently on a paid tool).
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar, cast

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, InputRequiredResult, ToolAnnotations

from pixverse_mcp.client import last_trace_id
from pixverse_mcp.errors import PixVerseError

log = logging.getLogger("pixverse_mcp.tools")

READ_ONLY = ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=True)
"""The annotations of a free tool that only reads."""
PAID = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=True)
"""The annotations of a tool that starts paid jobs: every call may cost credits."""


class NeedsInput(Exception):
    """A tool needs the user's answer before it can go on, and the client speaks the 2026-07-28
    protocol (no server-to-client requests mid-call): the tool answers with `result`, an
    `InputRequiredResult`, and the client calls again with the answer in `input_responses`."""

    def __init__(self, result: InputRequiredResult) -> None:
        super().__init__("the user's answer is needed first")
        self.result = result


P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class CallRecord:
    """What one tool call wants in its log line beyond the defaults."""

    tool: str
    trace_id: str | None = None
    video_id: int | None = None


current_call: ContextVar[CallRecord | None] = ContextVar("current_call", default=None)
"""The record of the tool call running in this task (None outside a tool call)."""


def note_call(*, trace_id: str, video_id: int) -> None:
    """Put a started job in this tool call's log line: its generate's trace id (what PixVerse
    support asks for; later status checks have trace ids of their own) and its video id."""
    record = current_call.get()
    if record is not None:
        record.trace_id, record.video_id = trace_id, video_id


@contextmanager
def tool_call(tool: str) -> Iterator[CallRecord]:
    """Run one tool: log its outcome in one line, and turn every failure into a ToolError for the model."""
    started = time.monotonic()
    record = CallRecord(tool)
    token = current_call.set(record)
    outcome = "ok"
    try:
        yield record
    except ToolError as exc:
        outcome = f"error: {exc}"
        raise
    except PixVerseError as exc:
        outcome = f"error: {type(exc).__name__}"
        raise ToolError(str(exc)) from None
    except Exception as exc:
        outcome = f"crash: {type(exc).__name__}"
        log.exception("%s failed unexpectedly", tool)
        raise ToolError(
            f"{tool} failed unexpectedly ({type(exc).__name__}). Nothing more is known to this server; "
            "try again, and if it keeps failing, check the server's log."
        ) from None
    except BaseException:
        outcome = "cancelled"
        raise
    finally:
        current_call.reset(token)
        log.info(
            "tool=%s outcome=%s duration=%.3fs trace_id=%s%s",
            tool,
            outcome[:200],
            time.monotonic() - started,
            record.trace_id or last_trace_id.get(),
            f" video_id={record.video_id}" if record.video_id is not None else "",
        )


class PixVerseServer(MCPServer[Any]):
    """The SDK's server, refusing unknown tool arguments by name before a tool runs."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        tool = self._tool_manager.get_tool(name)
        if tool is not None:
            known = list(tool.parameters.get("properties", {}))
            unknown = [key for key in arguments if key not in known]
            if unknown:
                names = ", ".join(repr(key) for key in unknown)
                # The same prefix as every other tool error, so clients treat it alike.
                raise ToolError(
                    f"Error executing tool {name}: {name} has no argument {names}; nothing was done or sent. "
                    "Its arguments are: "
                    f"{', '.join(known) or 'none'}. Call it again with only those."
                )
        return await super().call_tool(name, arguments, context)


def clean_doc(fn: Callable[..., Any]) -> str:
    """A docstring without its source indentation (Python 3.13 strips it, 3.11 and 3.12 do not)."""
    return inspect.cleandoc(fn.__doc__ or "")


def register(
    server: MCPServer[Any],
    *,
    title: str,
    annotations: ToolAnnotations,
    meta: dict[str, Any] | None = None,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Register an async function as a tool named after it, run inside `tool_call`."""

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        name = fn.__name__

        @functools.wraps(fn)
        async def run(*args: P.args, **kwargs: P.kwargs) -> R:
            with tool_call(name):
                try:
                    return await fn(*args, **kwargs)
                except NeedsInput as needed:
                    # The user must answer first (2026-07-28); the client calls again with it.
                    return cast(R, needed.result)

        server.add_tool(
            run, name=name, title=title, description=clean_doc(fn), annotations=annotations, meta=meta
        )
        tool = _registered(server, name)
        tool.parameters = {**compact_schema(tool.parameters), "additionalProperties": False}
        if tool.fn_metadata.output_schema is not None:
            output = compact_schema(tool.fn_metadata.output_schema, output=True)
            # The result model's docstring repeats what the tool's description says.
            output.pop("description", None)
            tool.fn_metadata.output_schema = output
        return fn

    return decorate


def _registered(server: MCPServer[Any], name: str) -> Tool:
    tool = server._tool_manager.get_tool(name)  # the SDK keeps no public handle on a registered tool
    if tool is None:
        raise KeyError(f"no tool named {name!r} is registered")
    return tool


def tool_parameters(server: MCPServer[Any], name: str) -> dict[str, Any]:
    """The input schema a registered tool publishes, to adjust in place before the server runs."""
    return _registered(server, name).parameters


def compact_schema(schema: Any, *, output: bool = False) -> Any:
    """A JSON schema as small as it can be with the same meaning: every conversation pays for it.

    Drops the `title` keys pydantic generates (they repeat the property names) and `"default": null`
    (in an `output` schema every default: a result always carries its values), and writes `anyOf`
    over plain types as one `type` list (`{"type": ["string", "null"]}`). Only keywords are
    touched: a property that is itself named "title" stays.
    """
    if isinstance(schema, list):
        return [compact_schema(item, output=output) for item in schema]
    if not isinstance(schema, dict):
        return schema
    cleaned: dict[str, Any] = {}
    for key, value in schema.items():
        if (key == "title" and isinstance(value, str)) or (key == "default" and (value is None or output)):
            continue
        if key in ("properties", "$defs", "patternProperties") and isinstance(value, dict):
            cleaned[key] = {name: compact_schema(sub, output=output) for name, sub in value.items()}
        else:
            cleaned[key] = compact_schema(value, output=output)
    options = cleaned.get("anyOf")
    if isinstance(options, list) and options and all(_plain_type(option) for option in options):
        del cleaned["anyOf"]
        cleaned["type"] = [option["type"] for option in options]
    return cleaned


def _plain_type(option: Any) -> bool:
    return isinstance(option, dict) and set(option) == {"type"} and isinstance(option["type"], str)
