"""Where datasets and `.spr` files go: one storage root, a local folder or an object store.

A root is a plain path, a `file://` URI, or `<scheme>://bucket/prefix` for an object store:
`s3://` through s3fs (installed), and `gs://` / `az://` (`abfs://`) through the same fsspec
layer once gcsfs / adlfs are installed. Any other scheme is an error, never a local folder.
Endpoint and credentials come from the standard AWS variables and config files that boto3,
pyarrow and delta-rs share (`AWS_ENDPOINT_URL[_S3]`, `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_PROFILE`).

Why fsspec/s3fs rather than `pyarrow.fs`: an object store has no rename, so a run commits by
creating its manifest with `If-None-Match: *`, and s3fs exposes that (`pipe_file(mode=
"create")`) where `pyarrow.fs` has no conditional write; it is also the filesystem pandas and
DuckDB (`register_filesystem`) take, so readers use the same object as the writer.

Writes: `put` is one PUT to the final key (atomic per object; locally a temp file renamed over
the target), `create` writes only if nothing is there (S3 `If-None-Match: *`, locally a hard
link, which fails when the name exists). Errors name the URI, bucket and endpoint, never a key.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

from tasks.errors import InvalidInput, StoreUnavailable
from tasks.redaction import redact_values

Location = Path | str  # a local path, or "<scheme>://bucket/key" on an object store

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# scheme -> the fsspec package that serves it (only s3fs is a dependency)
REMOTE_SCHEMES = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "az": "adlfs",
    "abfs": "adlfs",
    "abfss": "adlfs",
}
# fail within seconds when nothing listens, instead of botocore's long default retry budget
_S3_CONFIG = {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 3}}
_S3_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
)


def scheme_of(value: Location) -> str | None:
    """The URI scheme of `value` (`s3`, `file`, …), None for a plain path."""
    if isinstance(value, Path):
        return None
    match = _SCHEME.match(value)
    return match.group(1).lower() if match else None


def as_root(value: Location) -> Location:
    """A storage root as the settings keep it: a `Path` for a local folder (a `file://` URI
    included), the URI without a trailing slash for an object store. An unknown scheme is kept
    as written, so that using it raises (`open_storage`) with the URI in the message."""
    scheme = scheme_of(value)
    if scheme is None:
        return Path(value)
    if scheme == "file":
        return Path(urlsplit(str(value)).path)
    return str(value).rstrip("/")


def join(root: Location, *parts: str) -> Location:
    """`parts` under `root`: a `Path` for a local root, a URI for an object store."""
    root = as_root(root)
    return root.joinpath(*parts) if isinstance(root, Path) else "/".join((root, *parts))


def _as_location(value: object) -> object:
    return as_root(value) if isinstance(value, str | Path) else value


# a location in a pydantic model: a local path stays a Path through a JSON round trip, a URI a str
StoredAt = Annotated[str | Path, Field(union_mode="left_to_right"), AfterValidator(_as_location)]


def endpoint() -> str:
    """The S3 endpoint the AWS variables name (for messages)."""
    return (
        os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
        or "the default AWS S3 endpoint"
    )


_filesystems: dict[tuple[str, tuple[str | None, ...]], Any] = {}


def _remote_fs(scheme: str, uri: str) -> Any:
    package = REMOTE_SCHEMES.get(scheme)
    if package is None:
        valid = ", ".join(f"{s}://" for s in ("file", *REMOTE_SCHEMES))
        raise InvalidInput(f"storage root {uri!r}: unknown scheme {scheme!r}; use a path, {valid}")
    import fsspec

    # built again when the credentials or endpoint in the environment change (tests, workers)
    key = (scheme, tuple(os.environ.get(name) for name in _S3_ENV))
    if key in _filesystems:
        return _filesystems[key]
    try:
        if package == "s3fs":
            fs = fsspec.filesystem(scheme, skip_instance_cache=True, config_kwargs=_S3_CONFIG)
        else:
            fs = fsspec.filesystem(scheme, skip_instance_cache=True)
    except ImportError:
        raise InvalidInput(
            f"storage root {uri!r} needs the {package} package (pip install {package})"
        ) from None
    _filesystems[key] = fs
    return fs


@dataclass(frozen=True)
class Storage:
    """One storage root and the filesystem that serves it."""

    root: Location
    fs: Any  # an fsspec filesystem, None for a local root

    @property
    def local(self) -> bool:
        return isinstance(self.root, Path)

    @property
    def scheme(self) -> str:
        return "file" if self.local else str(scheme_of(self.root))

    @property
    def bucket(self) -> str | None:
        return None if self.local else urlsplit(str(self.root)).netloc

    def join(self, *parts: str) -> Location:
        return join(self.root, *parts)

    def relative(self, location: Location) -> str:
        """`location` relative to the root, with `/` separators."""
        if isinstance(self.root, Path):
            return Path(location).relative_to(self.root).as_posix()
        return str(location).removeprefix(str(self.root) + "/")

    def describe(self) -> str:
        return str(self.root) if self.local else f"{self.root} (endpoint {endpoint()})"

    def put(self, location: Location, data: bytes) -> None:
        """Write `data` at `location` in one step: readers see the old object or the new one."""
        if self.local:
            from tasks.store import atomic_write_bytes

            atomic_write_bytes(Path(location), data)
            return
        with self.errors(location):
            self.fs.pipe_file(_key(location), data)

    def put_many(self, files: dict[Location, bytes]) -> None:
        """`put` for many files; on an object store the PUTs run concurrently (s3fs batches
        them), each still one atomic object."""
        if self.local or len(files) < 2:
            for location, data in files.items():
                self.put(location, data)
            return
        with self.errors(next(iter(files))):
            self.fs.pipe({_key(location): data for location, data in files.items()})

    def create(self, location: Location, data: bytes) -> bool:
        """Write `data` at `location` only if nothing is there; False when something was."""
        if self.local:
            return _create_local(Path(location), data)
        with self.errors(location):
            try:
                self.fs.pipe_file(_key(location), data, mode="create")
            except OSError as exc:
                if _precondition_failed(exc):
                    return False
                raise
        return True

    def read(self, location: Location) -> bytes:
        if self.local:
            return Path(location).read_bytes()
        with self.errors(location):
            return self.fs.cat_file(_key(location))

    def exists(self, location: Location) -> bool:
        """Whether the object (file) `location` exists: one HEAD on S3."""
        if self.local:
            return Path(location).exists()
        with self.errors(location):
            if not hasattr(self.fs, "call_s3"):
                return bool(self.fs.exists(_key(location)))
            bucket, key, _ = self.fs.split_path(_key(location))
            try:  # fsspec's exists() also lists the prefix after a 404, to find a "folder"
                self.fs.call_s3("head_object", Bucket=bucket, Key=key)
            except FileNotFoundError:
                return False
            return True

    def delete(self, location: Location) -> None:
        if self.local:
            Path(location).unlink(missing_ok=True)
            return
        with contextlib.suppress(FileNotFoundError), self.errors(location):
            self.fs.rm_file(_key(location))

    def check(self) -> None:
        """Fail now, with one clear message, when the root cannot be used: its bucket does not
        exist, nothing answers at the endpoint, or the credentials are refused."""
        if self.local:
            return
        with self.errors(self.root):
            self.fs.ls(self.bucket, refresh=True)

    def storage_options(self) -> dict[str, str]:
        """delta-rs options for this root (it reads the same AWS variables itself)."""
        if self.scheme in ("s3", "s3a") and endpoint().startswith("http://"):
            return {"allow_http": "true"}
        return {}

    @contextlib.contextmanager
    def errors(self, location: Location) -> Iterator[None]:
        """Object-store failures as the project's errors, naming the URI, bucket and endpoint."""
        try:
            yield
        except (InvalidInput, StoreUnavailable):
            raise
        except Exception as exc:
            translated = _translate(exc, str(location), self.bucket or "")
            if translated is None:
                raise
            raise translated from None


def _key(location: Location) -> str:
    return str(location)


def _create_local(path: Path, data: bytes) -> bool:
    from tasks.store import atomic_write_bytes

    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.create")
    atomic_write_bytes(tmp, data)
    try:
        os.link(tmp, path)  # fails when `path` exists: the local If-None-Match
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _codes(exc: BaseException) -> set[str]:
    codes: set[str] = set()
    for seen in _chain(exc):
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            codes.add(str(response.get("Error", {}).get("Code", "")))
            codes.add(str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")))
    return codes


def _precondition_failed(exc: BaseException) -> bool:
    return bool(_codes(exc) & {"PreconditionFailed", "412", "ConditionalRequestConflict"})


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def _translate(exc: Exception, uri: str, bucket: str) -> Exception | None:
    where = f"{uri} (bucket {bucket!r}, endpoint {endpoint()})"
    names = {type(e).__name__ for e in _chain(exc)}
    codes = _codes(exc)
    detail = redact_values(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    if "NoSuchBucket" in codes or (
        isinstance(exc, FileNotFoundError) and "bucket" in str(exc).lower()
    ):
        return InvalidInput(
            f"bucket {bucket!r} does not exist at {endpoint()} (storage root {uri}); create it "
            "first: exports never create a bucket"
        )
    if "NoCredentialsError" in names:
        return StoreUnavailable(
            f"no credentials for {where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or AWS_PROFILE)"
        )
    if isinstance(exc, PermissionError) or codes & {"AccessDenied", "403", "InvalidAccessKeyId"}:
        return StoreUnavailable(
            f"access denied to {where}: {detail}; check AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY and the bucket's permissions"
        )
    if names & {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ClientConnectorError",
        "ConnectionRefusedError",
    }:
        return StoreUnavailable(f"cannot reach the object store for {where}: nothing answered")
    return None


def open_storage(root: Location) -> Storage:
    """The storage of root `root` (see `as_root`); an unknown scheme raises `InvalidInput`."""
    root = as_root(root)
    if isinstance(root, Path):
        return Storage(root=root, fs=None)
    scheme = str(scheme_of(root))
    fs = _remote_fs(scheme, root)
    if not urlsplit(root).netloc:
        raise InvalidInput(f"storage root {root!r} names no bucket ({scheme}://bucket/prefix)")
    return Storage(root=root, fs=fs)


def storage_for(location: Location) -> Storage:
    """The storage serving `location` (a file or folder under some root)."""
    scheme = scheme_of(location)
    if scheme is None or scheme == "file":
        return open_storage(as_root(location))
    bucket = urlsplit(str(location)).netloc
    return open_storage(f"{scheme}://{bucket}")


def check_root(root: Location) -> Storage:
    """`open_storage(root)`, then `check()`: for commands to fail before a flow run starts."""
    storage = open_storage(root)
    storage.check()
    return storage
