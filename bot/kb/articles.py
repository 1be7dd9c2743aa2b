"""Knowledge-base articles: Markdown files with YAML front matter, validated on load.

A broken file is reported with its path and the reason and skipped; the others still load,
so one bad edit by the content team never takes the whole knowledge base down.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError, validator

from bot.settings import PROJECT_ROOT

ARTICLES_DIR = PROJECT_ROOT / "knowledge_base" / "articles"
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML was built with it: four times faster on 10,000 files."""
SCENARIOS = ("new_user_guide", "product_use", "troubleshooting", "account_management")
CATEGORIES = (
    "return_exchange",
    "repair",
    "installation_maintenance",
    "logistics",
    "price_billing",
    "complaint",
    "inquiry",
    "account",
)


class ArticleMeta(BaseModel):
    """Front-matter schema."""

    id: str = Field(regex=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    title: str = Field(min_length=2)
    category: str
    scenario: str
    tags: list[str] = []
    updated: date
    version: int = Field(ge=1)
    products: list[str] = []
    answer: str = Field(min_length=4)
    questions: list[str] = Field(min_items=1)

    class Config:
        extra = "forbid"

    @validator("scenario")
    def _known_scenario(cls, value: str) -> str:
        if value not in SCENARIOS:
            raise ValueError(f"unknown scenario {value!r}; expected one of {', '.join(SCENARIOS)}")
        return value

    @validator("category")
    def _known_category(cls, value: str) -> str:
        if value not in CATEGORIES:
            raise ValueError(f"unknown category {value!r}")
        return value


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    category: str
    scenario: str
    tags: tuple[str, ...]
    updated: date
    version: int
    products: tuple[str, ...]
    answer: str
    questions: tuple[str, ...]
    body: str
    path: str


@dataclass(frozen=True)
class ArticleError:
    path: str
    reason: str


@dataclass(frozen=True)
class LoadResult:
    articles: tuple[Article, ...]
    errors: tuple[ArticleError, ...]


def parse_article(path: Path) -> Article:
    """Parse one file; raises ValueError with a readable reason."""
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---"):
        raise ValueError("missing YAML front matter (the file must start with ---)")
    try:
        _, front, body = text.split("---", 2)
    except ValueError:
        raise ValueError("front matter is not closed with ---") from None
    try:
        raw = yaml.load(front, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise ValueError(f"front matter is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError("front matter must be a mapping")
    try:
        meta = ArticleMeta(**raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(problems) from None
    if meta.id != path.stem:
        raise ValueError(f"id {meta.id!r} does not match the file name {path.name!r}")
    if not body.strip():
        raise ValueError("the article has no body")
    return Article(
        id=meta.id,
        title=meta.title,
        category=meta.category,
        scenario=meta.scenario,
        tags=tuple(meta.tags),
        updated=meta.updated,
        version=meta.version,
        products=tuple(meta.products),
        answer=meta.answer.strip(),
        questions=tuple(q.strip() for q in meta.questions if q and q.strip()),
        body=body.strip(),
        path=str(path),
    )


def load_articles(directory: Path = ARTICLES_DIR) -> LoadResult:
    """Load every ``*.md`` article; invalid or duplicate ones become errors."""
    articles: list[Article] = []
    errors: list[ArticleError] = []
    seen: dict[str, str] = {}
    for path in sorted(Path(directory).glob("*.md")):
        try:
            article = parse_article(path)
        except (ValueError, UnicodeDecodeError) as exc:
            errors.append(ArticleError(str(path), str(exc)))
            continue
        if article.id in seen:
            errors.append(
                ArticleError(
                    str(path), f"duplicate id {article.id!r} (first in {seen[article.id]})"
                )
            )
            continue
        seen[article.id] = str(path)
        articles.append(article)
    return LoadResult(tuple(articles), tuple(errors))


def content_fingerprint(directory: Path = ARTICLES_DIR, extra: tuple[Path, ...] = ()) -> str:
    """Hash of the article files (and e.g. the synonym file): the stored index's key."""
    digest = hashlib.sha256()
    for path in sorted(Path(directory).glob("*.md")) + sorted(extra):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
