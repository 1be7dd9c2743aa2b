"""`python -m bot kb search|check|gaps`: the knowledge base from the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bot.kb.articles import ARTICLES_DIR, load_articles
from bot.kb.search import load_knowledge_base


def _search(args: argparse.Namespace) -> int:
    hits = load_knowledge_base().search(args.question, k=args.k)
    if args.json:
        print(
            json.dumps(
                [{"id": h.id, "title": h.title, "score": h.score} for h in hits], ensure_ascii=False
            )
        )
    elif not hits:
        print("not found")
    else:
        for hit in hits:
            print(f"{hit.score:.3f}  {hit.id}  {hit.title}")
    return 0


def _check(args: argparse.Namespace) -> int:
    if not args.dir.is_dir():
        print(f"ERROR {args.dir}: not a directory")
        return 1
    result = load_articles(args.dir)
    for error in result.errors:
        print(f"ERROR {error.path}: {error.reason}")
    print(f"{len(result.articles)} articles valid, {len(result.errors)} with errors")
    return 1 if result.errors or not result.articles else 0


def _gaps(args: argparse.Namespace) -> int:
    from bot.kb.service import KnowledgeService

    gaps = KnowledgeService().gaps(limit=args.limit)
    if not gaps:
        print("no unanswered or unhelpful questions logged")
    for gap in gaps:
        print(
            f"{gap.count:4d}  (not found {gap.not_found}, unhelpful {gap.unhelpful})  {gap.query}"
        )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    kb = subparsers.add_parser("kb", help="knowledge base")
    commands = kb.add_subparsers(dest="kb_command", required=True)
    search = commands.add_parser("search", help="search the knowledge base")
    search.add_argument("question")
    search.add_argument("--k", type=int, default=3)
    search.add_argument("--json", action="store_true")
    search.set_defaults(handler=_search)
    check = commands.add_parser("check", help="validate the article files")
    check.add_argument(
        "--dir", type=Path, default=ARTICLES_DIR, help="articles directory (default: %(default)s)"
    )
    check.set_defaults(handler=_check)
    gaps = commands.add_parser("gaps", help="questions that found nothing or did not help")
    gaps.add_argument("--limit", type=int, default=20)
    gaps.set_defaults(handler=_gaps)
