"""Knowledge service: search with logging, feedback, the scenario menu and the gaps report.

Every search is written to ``kb_searches`` (query, folded query, hits, top score, found,
helpful) so the content team can see which questions found nothing or did not help.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from bot.kb.articles import SCENARIOS, Article
from bot.kb.search import Hit, KnowledgeBaseCache, shared_cache
from bot.nlu.catalogue import bare_product
from bot.nlu.text import normalise_text
from bot.store.db import session_factory, session_scope
from bot.store.models import KbSearch

log = logging.getLogger(__name__)

MENU_SIZE = 3
STATEMENT_THRESHOLD = 0.6
"""An unplaced message not phrased as a question ("冰箱晚上嗡嗡响吵得睡不着") is answered from
the knowledge base only when its best article scores this much (real symptoms score above
0.9, fragments such as "那个东西" below 0.1)."""
SUGGESTION_FLOOR = 0.02
SUGGESTIONS = 2
"""When nothing passes the threshold, up to this many articles scoring at least the floor are
offered as "您是不是想问" choices, not as an answer: on the evaluation sets every answerable
question that fell below the threshold had its article among two such choices, while 37 of 224
unanswerable ones got (harmless) choices beside the ticket and person buttons."""
_QUESTION_MARKERS = re.compile(
    r"[?？]|吗|么|呢|怎么|怎样|如何|多久|多少|几天|哪里|哪儿|什么|为什么|能不能|可不可以|是否|有没有"
    r"|要不要|该不该|需不需要|用不用|会不会|是不是|行不行|能否|可否"
)


_FOLLOW_UP_WORDS = (
    r"那|那么|好|好的|嗯|现在|然后|接下来|下一步|我|我们|该|应该|要|得|又|还|可以"
    r"|呢|啊|呀|吗|了|嘞|咧|好怕|害怕|好害怕|好慌|慌了|急死了|好急|救命"
)
_FOLLOW_UP = re.compile(
    rf"(?:{_FOLLOW_UP_WORDS})*"
    r"(?:怎么办|咋办|咋整|怎么弄|怎么处理|怎么做|该做什么|做什么|干什么|怎么搞|咋弄|怎么解决"
    r"|然后呢|接下来呢|下一步呢)"
    rf"(?:{_FOLLOW_UP_WORDS}|怎么办|怎么做|咋办)*"
)
_WHAT_ABOUT = re.compile(r"那(?:么|个)?[^那呢咧]{1,6}[呢咧]|[^那呢咧人钱货]{2,6}[呢咧]")
""""那压缩机呢" / "压缩机呢" after "空调保修几年": the same question about something else
(not "人呢", which asks for a person)."""


def is_follow_up(text: str) -> bool:
    """Whether a message leans on the previous one: only "what now?" ("现在怎么办", "那咋整呢"),
    "and X?" ("那压缩机呢") or a bare product ("冰箱的"), so a search needs the previous
    message for context."""
    compact = re.sub(r"[\s,.!?;，。！？；、~～…]+", "", normalise_text(text))
    if not compact:
        return False
    if any(pattern.fullmatch(compact) is not None for pattern in (_FOLLOW_UP, _WHAT_ABOUT)):
        return True
    return bare_product(compact) is not None  # "冰箱的" after "保修期多久啊"


def looks_like_question(text: str) -> bool:
    """Whether a message the NLU could not place reads like a question for the knowledge base."""
    return bool(_QUESTION_MARKERS.search(text or ""))


class KnowledgeUnavailable(RuntimeError):
    """The search log could not be written or read."""


@dataclass(frozen=True)
class KnowledgeAnswer:
    search_id: int
    hits: tuple[Hit, ...]
    second_candidate: Hit | None = None
    """Offered when the best hit did not help."""
    suggestions: tuple[Hit, ...] = ()
    """Low-scoring candidates offered as choices when there are no hits."""


@dataclass(frozen=True)
class Gap:
    query: str
    count: int
    not_found: int
    unhelpful: int


class KnowledgeService:
    def __init__(
        self, factory: sessionmaker | None = None, cache: KnowledgeBaseCache | None = None
    ) -> None:
        self._factory = factory or session_factory()
        self._cache = cache or shared_cache()

    def _log(self, query: str, folded: str, hits: list[Hit], sender_id: str | None) -> int:
        try:
            with session_scope(self._factory) as session:
                row = KbSearch(
                    created_at=datetime.now(timezone.utc),
                    sender_id=sender_id,
                    query=query[:500],
                    normalised_query=folded[:500],
                    hits=[{"id": h.id, "score": h.score} for h in hits],
                    top_article=hits[0].id if hits else None,
                    top_score=hits[0].score if hits else None,
                    found=bool(hits),
                )
                session.add(row)
                session.flush()
                return row.id
        except SQLAlchemyError as exc:
            log.error("could not log a knowledge search: %s", type(exc).__name__)
            raise KnowledgeUnavailable from exc

    def answer(
        self, query: str, sender_id: str | None = None, k: int = 3, context: str | None = None
    ) -> KnowledgeAnswer:
        """Search and log; hits are empty when nothing passes the threshold.

        ``context`` is the customer's previous message: a bare follow-up ("现在怎么办") is
        searched together with it, and logged as the customer typed it."""
        kb = self._cache.get()
        if context and is_follow_up(query):
            query_text = f"{context.strip()} {query}"
        else:
            query_text = query
        hits = kb.search(query_text, k=k)
        # The runner-up, offered when the best hit did not help: one on the same subject (the
        # best hit's category), or any that is likely in its own right.  A confident answer's
        # runner-ups all score little, the apt ones too ("发票抬头写错了能改吗" → the reissue
        # article at 0.019), so the score alone cannot tell them from noise ("退款多久到账" →
        # marketing texts at 0.004).
        second = next(
            (
                hit
                for hit in hits[1:]
                if hit.category == hits[0].category or hit.score >= SUGGESTION_FLOOR
            ),
            None,
        )
        search_id = self._log(query, kb.folder.fold(query_text), hits, sender_id)
        # The threshold decides whether there is an answer at all; every choice must reach it.
        candidates = (
            () if hits else kb.search(query_text, k=SUGGESTIONS, threshold=SUGGESTION_FLOOR)
        )
        suggestions = tuple(h for h in candidates if h.score >= SUGGESTION_FLOOR)
        return KnowledgeAnswer(search_id, tuple(hits), second, suggestions)

    def answers_confidently(self, query: str) -> bool:
        """Whether an article answers ``query`` surely enough to reply to a statement with it
        (nothing is logged: only the answer that follows is)."""
        return bool(self._cache.get().search(query, k=1, threshold=STATEMENT_THRESHOLD))

    def answers_at_all(self, query: str) -> bool:
        """Whether any article passes the answer threshold for ``query`` (nothing is logged)."""
        return bool(self._cache.get().search(query, k=1))

    def open_article(
        self, article_id: str, sender_id: str | None = None, second_try: bool = False
    ) -> KnowledgeAnswer:
        """Show one article chosen from a menu or offered as the second candidate."""
        kb = self._cache.get()
        article = kb.article(article_id)
        if article is None:
            return KnowledgeAnswer(self._log(f"#{article_id}", "", [], sender_id), ())
        hit = Hit(
            article.id, article.title, 1.0, article.answer, article.scenario, article.category
        )
        marker = "second-candidate" if second_try else "menu"
        return KnowledgeAnswer(self._log(f"#{marker}:{article_id}", "", [hit], sender_id), (hit,))

    def record_feedback(self, search_id: int, helpful: bool) -> None:
        try:
            with session_scope(self._factory) as session:
                row = session.get(KbSearch, search_id)
                if row is not None:
                    row.helpful = helpful
        except SQLAlchemyError as exc:
            raise KnowledgeUnavailable from exc

    def scenario_menu(self, size: int = MENU_SIZE) -> dict[str, list[Article]]:
        """Per scenario, the articles customers open most (ties: the order in the files)."""
        kb = self._cache.get()
        try:
            with session_scope(self._factory) as session:
                usage = Counter(
                    dict(
                        session.execute(
                            select(KbSearch.top_article, func.count())
                            .where(KbSearch.top_article.is_not(None))
                            .group_by(KbSearch.top_article)
                        ).all()
                    )
                )
        except SQLAlchemyError as exc:
            raise KnowledgeUnavailable from exc
        menu: dict[str, list[Article]] = {}
        for scenario in SCENARIOS:
            in_scenario = [a for a in kb.articles if a.scenario == scenario]
            in_scenario.sort(key=lambda a: -usage.get(a.id, 0))
            menu[scenario] = in_scenario[:size]
        return menu

    def gaps(self, limit: int = 20) -> list[Gap]:
        """Most frequent questions that found nothing or were rated unhelpful."""
        try:
            with session_scope(self._factory) as session:
                rows = session.execute(
                    select(KbSearch.normalised_query, KbSearch.found, KbSearch.helpful).where(
                        (KbSearch.found.is_(False)) | (KbSearch.helpful.is_(False))
                    )
                ).all()
        except SQLAlchemyError as exc:
            raise KnowledgeUnavailable from exc
        counts: dict[str, list[int]] = {}
        for query, found, helpful in rows:
            if not query:
                continue
            entry = counts.setdefault(query, [0, 0])
            entry[0] += not found
            entry[1] += helpful is False
        gaps = [Gap(q, nf + uh, nf, uh) for q, (nf, uh) in counts.items()]
        gaps.sort(key=lambda g: (-g.count, g.query))
        return gaps[:limit]


@lru_cache(maxsize=1)
def default_knowledge_service() -> KnowledgeService:
    return KnowledgeService()
