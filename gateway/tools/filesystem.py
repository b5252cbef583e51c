"""The filesystem tools, with the names and argument shapes of
``@modelcontextprotocol/server-filesystem`` (and AgentScope Runtime's
filesystem sandbox), confined to the sandbox's /workspace by sandboxd.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import mimetypes
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import grpc

from gateway.catalog import ToolSpec
from gateway.errors import ToolArgumentsError
from gateway.results import ContentBlock, ImageBlock, ResourceBlock, TextBlock, ToolResult
from gateway.sessions import SandboxHandle
from gateway.tools.handler import ToolHandler
from sandgate.sandbox.v1 import runtime_service_pb2 as rpb

__all__ = ["FilesystemTools"]

WORKSPACE = "/workspace"
_CHUNK = 64 * 1024
_MAX_MEDIA_BYTES = 10 * 1024 * 1024
_TREE_DEPTH = 64
_DEADLINE_S = 60.0

_PATH = {"type": "string",
         "description": "Path inside the sandbox; relative paths start at /workspace."}
_EXCLUDES = {"type": "array", "items": {"type": "string"}, "default": [],
             "description": "Glob patterns of paths to leave out, for example "
                            "\"node_modules\" or \"**/*.log\"."}
_LINES = "Return only the {} this many lines of the file."


def _spec(name: str, description: str, properties: Mapping[str, Any],
          required: tuple[str, ...] = ("path",), *, read_only: bool = True,
          needs_sandbox: bool = True) -> ToolSpec:
    return ToolSpec(name=name, description=description, group="filesystem",
                    input_schema={"type": "object", "properties": dict(properties),
                                  "required": list(required)},
                    read_only=read_only, needs_sandbox=needs_sandbox)


_READ_PROPS = {"path": _PATH,
               "head": {"type": "number", "minimum": 0, "description": _LINES.format("first")},
               "tail": {"type": "number", "minimum": 0, "description": _LINES.format("last")}}
_READ_TEXT = ("Read a text file in the sandbox and return its contents as text. For a long "
              "file pass head or tail to get only its first or last lines.")

SPECS = (
    _spec("read_file", _READ_TEXT + " (Same as read_text_file.)", _READ_PROPS),
    _spec("read_text_file", _READ_TEXT, _READ_PROPS),
    _spec("read_media_file",
          "Read an image or audio file in the sandbox and return it as image or audio "
          "content; other binary files come back as an embedded resource.", {"path": _PATH}),
    _spec("read_multiple_files",
          "Read several text files at once. Each file's contents follow its path; a file "
          "that cannot be read shows its error without failing the others.",
          {"paths": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                     "description": "Paths of the files to read."}}, ("paths",)),
    _spec("write_file",
          "Create a file, or replace an existing one completely, with the given text. "
          "Missing parent directories are created.",
          {"path": _PATH, "content": {"type": "string", "description": "The whole new text."}},
          ("path", "content"), read_only=False),
    _spec("edit_file",
          "Change a text file by replacing exact pieces of text; each oldText must occur "
          "exactly once. Returns a unified diff of the change. With dryRun the diff is "
          "shown and the file is left as it was.",
          {"path": _PATH,
           "edits": {"type": "array", "description": "Replacements, applied in order.",
                     "items": {"type": "object", "required": ["oldText", "newText"],
                               "properties": {
                                   "oldText": {"type": "string",
                                               "description": "Text to find, exactly."},
                                   "newText": {"type": "string",
                                               "description": "Text to put instead."}}}},
           "dryRun": {"type": "boolean", "default": False,
                      "description": "Only show the diff; do not change the file."}},
          ("path", "edits"), read_only=False),
    _spec("create_directory",
          "Create a directory, with any missing parent directories. Succeeds when the "
          "directory already exists.", {"path": _PATH}, read_only=False),
    _spec("list_directory",
          "List the entries of a directory, each marked [DIR] or [FILE].", {"path": _PATH}),
    _spec("list_directory_with_sizes",
          "List the entries of a directory with the size of each file, sorted by name or "
          "size, followed by totals.",
          {"path": _PATH, "sortBy": {"type": "string", "enum": ["name", "size"],
                                     "default": "name",
                                     "description": "Sort entries by name or by size."}}),
    _spec("directory_tree",
          "Return everything under a directory as a JSON tree: each entry has a name, a "
          "type (file or directory) and, for directories, its children.",
          {"path": _PATH, "excludePatterns": _EXCLUDES}),
    _spec("move_file",
          "Move or rename a file or directory. Fails when the destination already exists.",
          {"source": {"type": "string", "description": "Path to move."},
           "destination": {"type": "string", "description": "New path."}},
          ("source", "destination"), read_only=False),
    _spec("search_files",
          "Find files and directories under a directory whose path relative to it matches "
          "a glob pattern (for example \"*.py\" or \"**/test_*.py\"). Returns full paths, "
          "one per line.",
          {"path": _PATH,
           "pattern": {"type": "string", "description": "Glob pattern to match."},
           "excludePatterns": _EXCLUDES}, ("path", "pattern")),
    _spec("get_file_info",
          "Describe a file or directory: size, type, permissions and times.", {"path": _PATH}),
    _spec("list_allowed_directories",
          "List the directories these file tools can reach: the sandbox's workspace.", {},
          (), needs_sandbox=False),
)

_NAMES = frozenset(spec.name for spec in SPECS)


async def _list_allowed_directories(arguments: Mapping[str, Any],
                                    sandbox: SandboxHandle | None) -> ToolResult:
    return ToolResult((TextBlock(f"Allowed directories:\n{WORKSPACE}"),))


_KIND = {rpb.FILE_TYPE_FILE: "file", rpb.FILE_TYPE_DIRECTORY: "directory",
         rpb.FILE_TYPE_SYMLINK: "symlink", rpb.FILE_TYPE_OTHER: "other"}


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _time(ts: Any) -> str:
    return datetime.fromtimestamp(ts.ToNanoseconds() / 1e9, UTC).isoformat()


def _excluded(rel: str, name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(name, p)
               or fnmatch.fnmatchcase(rel, f"**/{p}") for p in patterns)


class FilesystemTools:
    """``filesystem`` group."""

    name = "filesystem"
    specs = SPECS

    def __init__(self, max_result_bytes: int) -> None:
        self._max_text = max_result_bytes

    def handler(self, name: str) -> ToolHandler:
        """The handler of one filesystem tool.

        Raises:
            KeyError: the group has no such tool.
        """
        if name not in _NAMES:
            raise KeyError(name)
        if name == "list_allowed_directories":
            return _list_allowed_directories
        method: Callable[[SandboxHandle, Mapping[str, Any]], Awaitable[tuple[ContentBlock, ...]]]
        method = getattr(self, f"_{name}")

        async def run(arguments: Mapping[str, Any], sandbox: SandboxHandle | None
                      ) -> ToolResult:
            assert sandbox is not None
            return ToolResult(await method(sandbox, arguments), sandbox_id=sandbox.sandbox_id)

        return run

    # ----- reading -------------------------------------------------------------------

    async def _read(self, sandbox: SandboxHandle, path: str, limit: int, offset: int = 0
                    ) -> tuple[rpb.FileInfo, bytes]:
        info = rpb.FileInfo()
        parts: list[bytes] = []
        stream: AsyncIterator[rpb.ReadFileResponse] = sandbox.stub.ReadFile(
            rpb.ReadFileRequest(path=path, offset=offset, limit=limit),
            metadata=sandbox.metadata(), timeout=_DEADLINE_S)
        async for chunk in stream:
            if chunk.HasField("info"):
                info = chunk.info
            parts.append(chunk.data)
        return info, b"".join(parts)

    async def _text(self, sandbox: SandboxHandle, arguments: Mapping[str, Any]) -> str:
        path = arguments["path"]
        head, tail = arguments.get("head"), arguments.get("tail")
        if head is not None and tail is not None:
            raise ToolArgumentsError("pass head or tail, not both")
        offset = 0
        if tail is not None:
            stat = await sandbox.stub.StatFile(rpb.StatFileRequest(path=path),
                                               metadata=sandbox.metadata(), timeout=_DEADLINE_S)
            offset = max(0, stat.info.size - self._max_text)
        info, data = await self._read(sandbox, path, self._max_text + 1, offset)
        if b"\x00" in data[:8192]:
            raise ToolArgumentsError(f"{path} is a binary file; read it with read_media_file")
        text = data.decode(errors="replace")
        if head is not None:
            return "".join(text.splitlines(keepends=True)[:int(head)])
        if tail is not None:
            lines = text.splitlines(keepends=True)
            return "".join(lines[-int(tail):]) if int(tail) else ""
        if len(data) > self._max_text:
            return (text[:self._max_text] + f"\n[... truncated: showing the first "
                    f"{_size(self._max_text)} of {_size(info.size)}; pass head or tail, or "
                    "use run_shell_command to read the rest]")
        return text

    async def _read_file(self, sandbox: SandboxHandle, arguments: Mapping[str, Any]
                         ) -> tuple[ContentBlock, ...]:
        return (TextBlock(await self._text(sandbox, arguments)),)

    _read_text_file = _read_file

    async def _read_media_file(self, sandbox: SandboxHandle, arguments: Mapping[str, Any]
                               ) -> tuple[ContentBlock, ...]:
        path = arguments["path"]
        info, data = await self._read(sandbox, path, _MAX_MEDIA_BYTES + 1)
        if len(data) > _MAX_MEDIA_BYTES:
            raise ToolArgumentsError(f"{path} is {_size(info.size)}; read_media_file returns "
                                     f"at most {_size(_MAX_MEDIA_BYTES)}")
        mime = mimetypes.guess_type(path)[0] or "application/octet-stream"
        if mime.startswith("image/"):
            return (ImageBlock(data, mime),)
        return (ResourceBlock(f"file://{info.path or path}", mime, blob=data),)

    async def _read_multiple_files(self, sandbox: SandboxHandle, arguments: Mapping[str, Any]
                                   ) -> tuple[ContentBlock, ...]:
        async def one(path: str) -> str:
            try:
                return f"{path}:\n{await self._text(sandbox, {'path': path})}\n"
            except grpc.aio.AioRpcError as exc:
                return f"{path}: Error - {exc.details()}"
            except ToolArgumentsError as exc:
                return f"{path}: Error - {exc}"

        texts = await asyncio.gather(*(one(p) for p in arguments["paths"]))
        return (TextBlock("\n---\n".join(texts)),)

    # ----- writing -------------------------------------------------------------------

    async def _write_file(self, sandbox: SandboxHandle, arguments: Mapping[str, Any]
                          ) -> tuple[ContentBlock, ...]:
        path, payload = arguments["path"], arguments["content"].encode()

        async def parts() -> AsyncIterator[rpb.WriteFileRequest]:
            yield rpb.WriteFileRequest(header=rpb.WriteFileHeader(path=path, make_parents=True))
            for start in range(0, len(payload), _CHUNK):
                yield rpb.WriteFileRequest(data=payload[start:start + _CHUNK])

        await sandbox.stub.WriteFile(parts(), metadata=sandbox.metadata(), timeout=_DEADLINE_S)
        return (TextBlock(f"Successfully wrote to {path}"),)

    async def _edit_file(self, sandbox: SandboxHandle, arguments: Mapping[str, Any]
                         ) -> tuple[ContentBlock, ...]:
        edits = [rpb.TextEdit(old_text=e["oldText"], new_text=e["newText"])
                 for e in arguments["edits"]]
        reply = await sandbox.stub.EditFile(
            rpb.EditFileRequest(path=arguments["path"], edits=edits,
                                dry_run=bool(arguments.get("dryRun", False))),
            metadata=sandbox.metadata(), timeout=_DEADLINE_S)
        ticks = "`" * 3
        while ticks in reply.diff:
            ticks += "`"
        return (TextBlock(f"{ticks}diff\n{reply.diff}{ticks}\n\n"),)

    async def _create_directory(self, sandbox: SandboxHandle, arguments: Mapping[str, Any]
                                ) -> tuple[ContentBlock, ...]:
        await sandbox.stub.MakeDirectory(
            rpb.MakeDirectoryRequest(path=arguments["path"], parents=True),
            metadata=sandbox.metadata(), timeout=_DEADLINE_S)
        return (TextBlock(f"Successfully created directory {arguments['path']}"),)

    async def _move_file(self, sandbox: SandboxHandle, arguments: Mapping[str, Any]
                         ) -> tuple[ContentBlock, ...]:
        source, destination = arguments["source"], arguments["destination"]
        await sandbox.stub.MoveFile(
            rpb.MoveFileRequest(source=source, destination=destination, overwrite=False),
            metadata=sandbox.metadata(), timeout=_DEADLINE_S)
        return (TextBlock(f"Successfully moved {source} to {destination}"),)

    # ----- listing -------------------------------------------------------------------

    async def _entries(self, sandbox: SandboxHandle, path: str, depth: int
                       ) -> tuple[list[rpb.FileInfo], bool]:
        reply = await sandbox.stub.ListDirectory(
            rpb.ListDirectoryRequest(path=path, depth=depth), metadata=sandbox.metadata(),
            timeout=_DEADLINE_S)
        return list(reply.entries), reply.truncated

    async def _list_directory(self, sandbox: SandboxHandle, arguments: Mapping[str, Any]
                              ) -> tuple[ContentBlock, ...]:
        entries, truncated = await self._entries(sandbox, arguments["path"], 1)
        lines = [f"[{'DIR' if e.type == rpb.FILE_TYPE_DIRECTORY else 'FILE'}] {e.name}"
                 for e in entries]
        if truncated:
            lines.append("[... more entries not shown]")
        return (TextBlock("\n".join(lines) if lines else "(empty directory)"),)

    async def _list_directory_with_sizes(self, sandbox: SandboxHandle,
                                         arguments: Mapping[str, Any]
                                         ) -> tuple[ContentBlock, ...]:
        entries, _ = await self._entries(sandbox, arguments["path"], 1)
        if arguments.get("sortBy", "name") == "size":
            entries.sort(key=lambda e: e.size, reverse=True)
        dirs = [e for e in entries if e.type == rpb.FILE_TYPE_DIRECTORY]
        files = [e for e in entries if e.type != rpb.FILE_TYPE_DIRECTORY]
        lines = [f"[DIR]  {e.name:<30}" if e.type == rpb.FILE_TYPE_DIRECTORY
                 else f"[FILE] {e.name:<30} {_size(e.size):>10}" for e in entries]
        lines += ["", f"Total: {len(files)} files, {len(dirs)} directories",
                  f"Combined size: {_size(sum(e.size for e in files))}"]
        return (TextBlock("\n".join(lines)),)

    async def _directory_tree(self, sandbox: SandboxHandle, arguments: Mapping[str, Any]
                              ) -> tuple[ContentBlock, ...]:
        path = arguments["path"]
        excludes = list(arguments.get("excludePatterns") or [])
        root = await sandbox.stub.StatFile(rpb.StatFileRequest(path=path),
                                           metadata=sandbox.metadata(), timeout=_DEADLINE_S)
        base = root.info.path.rstrip("/")
        entries, truncated = await self._entries(sandbox, path, _TREE_DEPTH)
        tree: list[dict[str, Any]] = []
        nodes: dict[str, list[dict[str, Any]]] = {"": tree}
        for entry in sorted(entries, key=lambda e: e.path):
            rel = entry.path[len(base):].lstrip("/")
            parent = rel.rpartition("/")[0]
            if parent not in nodes or _excluded(rel, entry.name, excludes):
                continue  # under an excluded directory, or excluded itself
            is_dir = entry.type == rpb.FILE_TYPE_DIRECTORY
            node: dict[str, Any] = {"name": entry.name, "type": "directory" if is_dir else "file"}
            if is_dir:
                node["children"] = nodes[rel] = []
            nodes[parent].append(node)
        text = json.dumps(tree, indent=2)
        if truncated:
            text += "\n[... the tree is incomplete: too many entries]"
        return (TextBlock(text),)

    async def _search_files(self, sandbox: SandboxHandle, arguments: Mapping[str, Any]
                            ) -> tuple[ContentBlock, ...]:
        reply = await sandbox.stub.SearchFiles(
            rpb.SearchFilesRequest(path=arguments["path"], pattern=arguments["pattern"],
                                   exclude_patterns=list(arguments.get("excludePatterns") or [])),
            metadata=sandbox.metadata(), timeout=_DEADLINE_S)
        text = "\n".join(reply.paths) if reply.paths else "No matches found"
        if reply.truncated:
            text += "\n[... more matches not shown; narrow the pattern]"
        return (TextBlock(text),)

    async def _get_file_info(self, sandbox: SandboxHandle, arguments: Mapping[str, Any]
                             ) -> tuple[ContentBlock, ...]:
        reply = await sandbox.stub.StatFile(rpb.StatFileRequest(path=arguments["path"]),
                                            metadata=sandbox.metadata(), timeout=_DEADLINE_S)
        info = reply.info
        lines = [f"path: {info.path}", f"size: {info.size}", f"created: {_time(info.created_at)}",
                 f"modified: {_time(info.modified_at)}", f"accessed: {_time(info.accessed_at)}",
                 f"isDirectory: {str(info.type == rpb.FILE_TYPE_DIRECTORY).lower()}",
                 f"isFile: {str(info.type == rpb.FILE_TYPE_FILE).lower()}",
                 f"type: {_KIND.get(info.type, 'other')}",
                 f"permissions: {info.mode & 0o777:o}"]
        return (TextBlock("\n".join(lines)),)
