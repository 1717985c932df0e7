"""`atelier kb add|list|remove`: the knowledge base the conversations retrieve from."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from kit.storage import kb_doc_key, kb_prefix, kb_source_key, make_store
from models.conversation import IngestDoc, IngestJob, KnowledgeDoc
from models.settings import Settings
from starter.common import UsageError, connect_or_explain, stderr
from starter.launch import labelled_start
from workflows.knowledge import KnowledgeIngestWorkflow

MAX_BYTES = 5 * 1024 * 1024


def add_parser(sub: argparse._SubParsersAction) -> None:
    kb = sub.add_parser("kb", help="manage the knowledge base conversations retrieve from")
    actions = kb.add_subparsers(dest="kb_command", required=True, parser_class=type(kb))
    add = actions.add_parser("add", help="chunk, embed (on the scoring worker) and store text/markdown files")
    add.add_argument("files", nargs="+", type=Path)
    actions.add_parser("list", help="list the documents")
    remove = actions.add_parser("remove", help="remove documents by id")
    remove.add_argument("doc_ids", nargs="+")


def read_text_file(path: Path) -> bytes:
    """The file's bytes, if it is a readable, non-empty UTF-8 text file of at most 5 MB."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    if path.stat().st_size > MAX_BYTES:
        raise UsageError(f"{path}: larger than 5 MB")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text") from exc
    if not text.strip():
        raise UsageError(f"{path}: empty")
    return data


async def run(args: argparse.Namespace, settings: Settings) -> int:
    store = make_store(settings)
    if args.kb_command == "list":
        docs = [KnowledgeDoc.model_validate_json(await store.read(key)) for key in await store.keys(kb_prefix())]
        listed = [{"doc_id": d.doc_id, "name": d.name, "chunks": len(d.chunks)} for d in docs]
        print(json.dumps(listed, indent=2))
        return 0
    if args.kb_command == "remove":
        missing = [d for d in args.doc_ids if not await store.exists(kb_doc_key(d))]
        if missing:
            raise UsageError(f"no document with id {', '.join(missing)} (see `kb list`)")
        for doc_id in args.doc_ids:
            await store.delete(kb_doc_key(doc_id))
        print(json.dumps({"removed": args.doc_ids}))
        return 0
    files = [(path, read_text_file(path)) for path in args.files]  # every file checked before anything is stored
    docs = []
    for path, data in files:
        digest = hashlib.sha256(data).hexdigest()
        ref = await store.put(kb_source_key(digest, path.name), data, "text/plain")
        docs.append(IngestDoc(name=path.name, source=ref))
    client = await connect_or_explain(settings)
    batch = hashlib.sha256("".join(d.source.sha256 for d in docs).encode()).hexdigest()[:16]
    stderr.print(f"embedding {len(docs)} documents on the scoring worker…")
    names = ", ".join(d.name for d in docs)
    job = IngestJob(docs=docs)
    handle = await labelled_start(
        client, settings, "knowledge", f"ingest {names}", KnowledgeIngestWorkflow.run, job, f"kb-add-{batch}"
    )
    summaries = await handle.result()
    print(json.dumps([s.model_dump() for s in summaries], indent=2))
    return 0
