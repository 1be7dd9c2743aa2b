"""The service desk: everything a conversation asks of the store, in one place.

Custom actions stay thin by calling this façade; it turns customer answers into tickets,
renders timelines and delivery status into the values that domain.yml responses expect, and
turns database failures into ``ServiceUnavailable`` so a conversation never crashes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.exc import SQLAlchemyError

from bot.handoff.policy import BusinessHours, load_escalation_policy
from bot.nlu.catalogue import load_catalogue, product_by_alias, product_mentions, skus_mentioned
from bot.nlu.text import normalise_text
from bot.policy import ReturnWindows, ServicePolicy, SlaStatus, load_policy
from bot.services.customers import CustomerService, VerifiedOrder, mask_phone
from bot.services.orders import (
    OrderCancellation,
    OrderService,
    OrderView,
    UnknownOrder,
    cancellation_state,
)
from bot.services.tickets import (
    TICKET_NO_PATTERN,
    InvalidTransition,
    TicketService,
    TicketView,
    UnknownTicket,
    normalise_ticket_no,
)
from bot.settings import PROJECT_ROOT
from bot.store.db import session_factory
from bot.store.models import TERMINAL_TICKET_STATUSES, TICKET_CATEGORIES

# A resolved ticket waits only for the customer's confirmation: nothing left to chase.
SETTLED_TICKET_STATUSES = frozenset({*TERMINAL_TICKET_STATUSES, "resolved"})

log = logging.getLogger(__name__)

REQUESTS_FILE = PROJECT_ROOT / "config" / "service_requests.yml"
RETURN_WINDOWS = tuple(ReturnWindows.__fields__)


class ServiceUnavailable(RuntimeError):
    """The store could not be reached or failed mid-change (nothing was half-written)."""


class Withdrawal(str, Enum):
    """What became of a ticket the customer asked to withdraw."""

    WITHDRAWN = "withdrawn"
    IN_HAND = "in_hand"  # someone is working on it: only a person can stop that
    SETTLED = "settled"  # resolved, closed or cancelled already
    NOT_FOUND = "not_found"  # unknown, or not this customer's


@dataclass(frozen=True)
class RequestKind:
    name: str
    category: str
    summary: str
    fields: Mapping[str, str]
    urgent_when: str | None = None
    """The answer whose urgent words (urgent_fault_words) make the ticket urgent."""
    window: str | None = None
    """The policy window (service_policy.yml return_windows) the request must fall in."""
    category_by_intent: Mapping[str, str] = field(default_factory=dict)
    """The category a ticket of this kind takes when the customer's words were read as one of
    these intents (a message about a leaking washer is a repair); else ``category``."""

    def category_for(self, intent: str | None) -> str:
        """The ticket category for words the NLU read as ``intent``."""
        return self.category_by_intent.get(str(intent), self.category)


class Chase(Enum):
    """What a customer's look at a ticket did to it (``ServiceDesk.chase``)."""

    NONE = "none"
    NOTED = "noted"
    OVERDUE = "overdue"


@dataclass(frozen=True)
class OpeningAnswer:
    """Which answer of a form the message that started it may already hold."""

    slot: str
    min_chars: int
    words: tuple[str, ...]
    """Words that only ask for the service or fill the sentence ("我要报修", "冰箱坏了")."""
    reasons: tuple[str, ...] = ()
    """Short phrases that are a whole answer on their own ("不想要了", "买错了")."""


@dataclass(frozen=True)
class SwitchWords:
    """Words that name another request, and words that turn it down."""

    words: tuple[str, ...]
    unless: tuple[str, ...] = ()


@dataclass(frozen=True)
class RequestConfig:
    """config/service_requests.yml: what each form turns into, and which opening messages
    already say what the form would ask."""

    kinds: Mapping[str, RequestKind]
    urgent_fault_words: tuple[str, ...]
    openings: Mapping[str, OpeningAnswer]
    filler_words: tuple[str, ...]
    cancel_words: tuple[str, ...]
    ticket_words: tuple[str, ...] = ()
    """Words that make a "取消" about a ticket ("把工单取消掉")."""
    needs_delivery: frozenset[str] = frozenset()
    """Forms whose request is about goods the customer has received."""
    switches: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Per form, the intents that switch to another request."""
    switch_words: Mapping[str, SwitchWords] = field(default_factory=dict)
    follow_up_words: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Per ticket category (and ``any``), words that make a message left about an order with
    a ticket of that category under way about that ticket ("报修好几天了还没修好")."""

    person_only_note: str = ""
    """The message taken down for a customer who, asked what it is about, asks for a person."""
    order_words: tuple[str, ...] = ()
    """Words that make a "取消…" about an order ("帮我把订单取消", "拍错了 取消一下")."""
    order_cancel_keep: tuple[str, ...] = ()
    """At "确认取消吗？", words that keep the order ("不取消了", "再想想")."""
    order_cancel_go: tuple[str, ...] = ()
    """...and words that cancel it when the NLU read no plain yes ("取消吧", "不要了")."""
    hurry_words: tuple[str, ...] = ()
    """Words that ask to hurry a ticket along ("催一下", "加急")."""
    request_words: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Per request intent, the words that name it in a message asking for two things."""
    detail_words: tuple[str, ...] = ()
    """Words that add to what was just said ("对了 …", "还有 …"): right after a ticket opened,
    a message the classifier could not place that opens with one is a detail for it."""

    def adds_a_detail(self, text: str) -> bool:
        """Whether ``text`` opens with a word that adds to what was said before."""
        folded = normalise_text(text).lstrip("，,。.！!～~ ")
        return any(folded.startswith(word) for word in self.detail_words)

    def requests_named(self, text: str, default_intent: str) -> list[tuple[str, str]]:
        """(request intent, product word) for each product a message names, in order: "冰箱
        不制冷要报修，洗衣机想退货" → (report_fault, 冰箱), (request_return, 洗衣机).  A
        clause naming products but no request takes the request of the next clause that
        names one ("空调和热水器 都要装"), else ``default_intent``."""
        clauses = [c for c in _CLAUSE_BREAKS.split(normalise_text(text).lower()) if c.strip()]
        named: list[tuple[list[str], str | None]] = []
        for clause in clauses:
            said = [
                (clause.rfind(word), intent)
                for intent, words in self.request_words.items()
                for word in words
                if word in clause
            ]
            named.append((product_mentions(clause), max(said)[1] if said else None))
        pairs: list[tuple[str, str]] = []
        for index, (products, intent) in enumerate(named):
            later = (asked for _, asked in named[index:] if asked)
            intent = intent or next(later, default_intent)
            pairs += [(intent, product) for product in products if (intent, product) not in pairs]
        return pairs

    def asks_to_hurry(self, text: str) -> bool:
        """Whether a look at a ticket also asks to hurry it ("帮我催催")."""
        folded = normalise_text(text)
        return any(word in folded for word in self.hurry_words)

    def names_an_order_to_cancel(self, text: str) -> bool:
        """Whether "取消…" asks to cancel an order rather than the talk or a ticket."""
        folded = normalise_text(text)
        return any(word in folded for word in self.order_words)

    def confirms_order_cancel(self, intent: str, text: str) -> bool:
        """Whether the answer to "确认取消吗？" (read by the NLU as ``intent``) says cancel.
        Keeping wins any doubt: "算了" keeps the order; "确认" or "取消吧" cancels it."""
        folded = normalise_text(text)
        if intent == "deny" or any(word in folded for word in self.order_cancel_keep):
            return False
        return intent == "affirm" or any(word in folded for word in self.order_cancel_go)

    def is_urgent(self, kind: RequestKind, answers: Mapping[str, Any]) -> bool:
        """Whether the described problem names a danger or a failed installation.  Only the
        described problem counts: a product ("燃气热水器") or an address is no emergency."""
        described = str(answers.get(kind.urgent_when) or "") if kind.urgent_when else ""
        return any(word in described for word in self.urgent_fault_words)

    def categories_named(self, text: str) -> set[str]:
        """The ticket categories whose follow-up words ``text`` uses ("报修" → repair)."""
        folded = normalise_text(text)
        return {
            category
            for category, words in self.follow_up_words.items()
            if category != "any" and any(word in folded for word in words)
        }

    def follows_up(self, text: str, category: str) -> bool:
        """Whether ``text`` chases a ticket of ``category`` rather than raising something new
        ("退款半个月了还没到" chases no repair)."""
        folded = normalise_text(text)
        words = (*self.follow_up_words.get(category, ()), *self.follow_up_words.get("any", ()))
        return any(word in folded for word in words)

    def switch_asked(self, form: str, intent: str | None, text: str) -> bool:
        """Whether ``text``, read by the NLU as ``intent``, asks to change the request under
        way in ``form`` into another ("还是换货吧" in the return form)."""
        if intent not in self.switches.get(form, ()):
            return False
        return self.names_request(str(intent), text)

    def names_request(self, intent: str, text: str) -> bool:
        """Whether ``text`` asks for the request ``intent`` in so many words ("还是换货吧"),
        not only reads like it to the NLU ("有坏点 屏幕中间一个亮点")."""
        words = self.switch_words.get(intent)
        if words is None:
            return False
        folded = normalise_text(text)
        return any(w in folded for w in words.words) and not any(w in folded for w in words.unless)

    def opening_answer(self, form: str, text: str) -> dict[str, str]:
        """``{slot: text}`` when the message that started ``form`` already answers its
        question ("洗衣机漏水了 想报修" describes the fault; "我要报修" and "冰箱坏了" do not):
        at least ``min_chars`` characters are left once product names, the form's words and
        the filler words are taken out.  A button payload ("/report_fault") says nothing."""
        opening = self.openings.get(form)
        if opening is None or not text or text.startswith("/"):
            return {}
        folded = normalise_text(text).lower()
        complete = any(reason in folded for reason in opening.reasons)
        if not complete and (
            self._chars_left(text, opening.words, drop_products=True) < opening.min_chars
        ):
            return {}
        return {opening.slot: text.strip()}

    def is_about_a_ticket(self, text: str) -> bool:
        """Whether "取消…" is about a ticket ("把工单取消掉", "我想撤销之前的申请")."""
        folded = normalise_text(text)
        return any(word in folded for word in self.ticket_words)

    def names_what_to_cancel(self, text: str) -> bool:
        """Whether "取消…" names something that exists ("取消预约", "帮我取消订单"), which the
        knowledge base can explain, rather than dropping the talk ("算了", "取消吧")."""
        return self._chars_left(text, self.cancel_words, drop_products=False) >= 2

    def _chars_left(self, text: str, words: tuple[str, ...], drop_products: bool) -> int:
        """Characters of ``text`` left once ``words``, the filler words and (optionally)
        product names are taken out; 0 for a button payload such as "/report_fault"."""
        text = (text or "").strip()
        if not text or text.startswith("/"):
            return 0
        rest = _IDENTIFIERS.sub(" ", normalise_text(text).lower())
        for phrase in _noise_phrases(words, self.filler_words, drop_products):
            rest = rest.replace(phrase, " ")
        return len(_DESCRIPTION_CHARS.findall(rest))


_CLAUSE_BREAKS = re.compile(r"[，,。；;！!？?\s]+|另外|还有|以及|然后")
"""Where one request in a message ends and the next may begin."""
_DESCRIPTION_CHARS = re.compile(r"[\u4e00-\u9fff]|[a-z]|\d")
_IDENTIFIERS = re.compile(
    r"(?:订单号|订单|单号|工单号|工单|电话号码|电话|手机号码|手机号|手机|号码)?[:：]?\s*"
    r"(?:[a-z]{1,3}\d[\d-]{5,}|\d{7,})"
)
"""Order, ticket and phone numbers with their labels ("订单SO20261103002", "电话139…"):
which order, not what the customer wants."""


@lru_cache(maxsize=16)
def _noise_phrases(
    words: tuple[str, ...], filler_words: tuple[str, ...], drop_products: bool
) -> tuple[str, ...]:
    """The phrases ``_chars_left`` takes out, longest first ("洗衣机" before "衣"); built once
    per word list rather than on every message."""
    noise = {w.lower() for w in (*words, *filler_words)}
    if drop_products:
        noise |= {n.lower() for p in load_catalogue() for n in (p.name, *p.aliases)}
    return tuple(sorted(noise, key=len, reverse=True))


def _word_list(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(w, str) and w for w in raw):
        raise ValueError(f"{where} must be a list of non-empty words")
    return tuple(raw)


@lru_cache(maxsize=2)
def load_request_config(path: Path = REQUESTS_FILE) -> RequestConfig:
    """The request kinds, urgent fault words and opening answers (validated)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    kinds = {}
    for name, spec in (raw.get("requests") or {}).items():
        try:
            kinds[name] = RequestKind(
                name,
                str(spec["category"]),
                str(spec["summary"]),
                dict(spec.get("fields") or {}),
                spec.get("urgent_when"),
                spec.get("window"),
                dict(spec.get("category_by_intent") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: request kind {name!r} is invalid: {exc!r}") from exc
        unknown = {
            str(category)
            for category in (kinds[name].category, *kinds[name].category_by_intent.values())
            if category not in TICKET_CATEGORIES
        }
        if unknown:
            raise ValueError(
                f"{path}: request kind {name!r}: unknown ticket categories {sorted(unknown)}"
            )
        if kinds[name].window not in (None, *RETURN_WINDOWS):
            raise ValueError(
                f"{path}: request kind {name!r}: window {kinds[name].window!r} is not one of "
                f"{', '.join(RETURN_WINDOWS)}"
            )
        if kinds[name].urgent_when not in (None, *kinds[name].fields):
            raise ValueError(
                f"{path}: request kind {name!r}: urgent_when "
                f"{kinds[name].urgent_when!r} is not one of its fields"
            )
    answers = raw.get("order_cancel_answers") or {}
    if not isinstance(answers, dict):
        raise ValueError(f"{path}: order_cancel_answers must map keep / cancel to word lists")
    openings = {}
    for form, spec in (raw.get("opening_answers") or {}).items():
        where = f"{path}: opening_answers.{form}"
        try:
            openings[form] = OpeningAnswer(
                str(spec["slot"]),
                int(spec["min_chars"]),
                _word_list(spec["words"], where),
                _word_list(spec.get("reasons") or [], f"{where}.reasons"),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{where} is invalid: {exc!r}") from exc
    return RequestConfig(
        kinds,
        _word_list(raw.get("urgent_fault_words") or [], f"{path}: urgent_fault_words"),
        openings,
        _word_list(raw.get("filler_words") or [], f"{path}: filler_words"),
        _word_list(raw.get("cancel_words") or [], f"{path}: cancel_words"),
        _word_list(raw.get("ticket_words") or [], f"{path}: ticket_words"),
        frozenset(_word_list(raw.get("needs_delivery") or [], f"{path}: needs_delivery")),
        {
            form: _word_list(intents, f"{path}: switches.{form}")
            for form, intents in (raw.get("switches") or {}).items()
        },
        {
            intent: SwitchWords(
                _word_list(spec.get("words"), f"{path}: switch_words.{intent}.words"),
                _word_list(spec.get("unless") or [], f"{path}: switch_words.{intent}.unless"),
            )
            for intent, spec in (raw.get("switch_words") or {}).items()
        },
        _follow_up_words(raw.get("follow_up_words") or {}, path),
        str(raw.get("person_only_note") or ""),
        _word_list(raw.get("order_words") or [], f"{path}: order_words"),
        _word_list(answers.get("keep") or [], f"{path}: order_cancel_answers.keep"),
        _word_list(answers.get("cancel") or [], f"{path}: order_cancel_answers.cancel"),
        _word_list(raw.get("hurry_words") or [], f"{path}: hurry_words"),
        {
            intent: _word_list(words, f"{path}: request_words.{intent}")
            for intent, words in (raw.get("request_words") or {}).items()
        },
        _word_list(raw.get("detail_words") or [], f"{path}: detail_words"),
    )


def _follow_up_words(raw: Any, path: Path) -> dict[str, tuple[str, ...]]:
    where = f"{path}: follow_up_words"
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must map ticket categories to word lists")
    unknown = set(raw) - {*TICKET_CATEGORIES, "any"}
    if unknown:
        raise ValueError(f"{where}: unknown ticket categories {sorted(unknown)}")
    return {category: _word_list(words, f"{where}.{category}") for category, words in raw.items()}


def _ticket_skus(ticket: TicketView) -> frozenset[str]:
    """The catalogue products a ticket is about (its product field, summary or sku)."""
    said = " ".join([ticket.summary, *(str(value) for value in ticket.details.values())])
    sku = ticket.details.get("sku")
    return skus_mentioned(said) | ({str(sku)} if sku else set())


def format_time(moment: datetime, policy: ServicePolicy) -> str:
    """Customer-facing time in the business time zone, e.g. "11月25日 14:30"."""
    local = moment.astimezone(policy.timezone)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


class ServiceDesk:
    """Identity checks, tickets and order status for conversations."""

    def __init__(
        self,
        factory: Any = None,
        policy: ServicePolicy | None = None,
        business_hours: BusinessHours | None = None,
    ) -> None:
        """`business_hours` (default: the escalation policy's) start the SLA clocks of a
        ticket opened at night at the next opening."""
        factory = factory or session_factory()
        self.policy = policy or load_policy()
        self.customers = CustomerService(factory)
        self.orders = OrderService(factory)
        hours = business_hours or load_escalation_policy().business_hours
        self.tickets = TicketService(factory, self.policy, hours)

    # -- identity -------------------------------------------------------------------------
    def verify_identity(self, order_no: str, phone: str) -> VerifiedOrder | None:
        """The verified order, or None for an unknown order and a wrong phone alike."""
        try:
            return self.customers.verify_order_owner(order_no, phone)
        except SQLAlchemyError as exc:
            log.error("identity check failed for %s: %s", mask_phone(phone), type(exc).__name__)
            raise ServiceUnavailable from exc

    def contact_by_phone(self, phone: str) -> VerifiedOrder | None:
        """Whom a message or complaint left without an order number is from (see
        CustomerService.contact_by_phone)."""
        try:
            return self.customers.contact_by_phone(phone)
        except SQLAlchemyError as exc:
            log.error("contact lookup failed for %s: %s", mask_phone(phone), type(exc).__name__)
            raise ServiceUnavailable from exc

    def order_products(self, order_no: str) -> list[str]:
        """Product names on the order, for "which item?" questions."""
        return [item.product_name for item in self._order(order_no).items]

    def order_address(self, order_no: str) -> str:
        """Where the order was delivered: the likely place for a visit, offered as a choice."""
        return self._order(order_no).address

    def match_product(self, order_no: str, mention: str) -> str | None:
        """The order's product the customer means by ``mention`` ("洗衣机" → "滚筒洗衣机")."""
        items = self._order(order_no).items
        known = product_by_alias(mention)
        for item in items:
            if known and item.sku == known.sku:
                return item.product_name
            if mention and (mention in item.product_name or item.product_name in mention):
                return item.product_name
        return None

    # -- tickets --------------------------------------------------------------------------
    def open_request(
        self,
        kind_name: str,
        verified: VerifiedOrder,
        answers: Mapping[str, Any],
        sender_id: str | None,
        channel: str,
        need_class: str | None = None,
        intent: str | None = None,
    ) -> TicketView:
        """Open the ticket for a submitted form (one transaction).

        ``need_class`` is the SLA class the caller already knows (a call-back after a safety
        escalation is urgent); urgent fault words in the described problem make it urgent
        anyway, and without either the category's default applies.  ``intent`` is what the
        NLU read in the customer's own words, which may route the ticket to another category
        (``category_by_intent``).
        """
        config = load_request_config()
        kind = config.kinds[kind_name]
        details = {
            label: str(answers[field]) for field, label in kind.fields.items() if answers.get(field)
        }
        # Only the described problem counts: a product ("燃气热水器") or an address is no
        # emergency.
        if config.is_urgent(kind, answers):
            need_class = "urgent"
        summary = kind.summary + ("：" + next(iter(details.values())) if details else "")
        try:
            ticket = self.tickets.open_ticket(
                customer_id=verified.customer_id,
                category=kind.category_for(intent),
                summary=summary[:200],
                details=details,
                order_no=verified.order_no,
                need_class=need_class,
                channel=channel,
                sender_id=sender_id,
            )
        except SQLAlchemyError as exc:
            log.error("opening a %s ticket failed: %s", kind_name, type(exc).__name__)
            raise ServiceUnavailable from exc
        log.info(
            "opened ticket %s (%s) for customer %s",
            ticket.ticket_no,
            kind_name,
            verified.customer_id,
        )
        return ticket

    def open_duplicate(
        self, kind_name: str, verified: VerifiedOrder, answers: Mapping[str, Any]
    ) -> TicketView | None:
        """The ticket still under way for the same request — same kind, order and product
        ("电饭煲煮饭夹生 要报修" submitted twice), or one of the same category opened by an
        agent or another channel for that product — which a new form adds to rather than
        duplicates.  Only requests about a product are matched; messages and complaints are
        not."""
        config = load_request_config()
        kind = config.kinds[kind_name]
        product = answers.get("product")
        if "product" not in kind.fields or not product or config.is_urgent(kind, answers):
            return None  # an urgent report ("插头冒烟了") gets its own urgent ticket
        known = product_by_alias(str(product))
        for ticket in self.tickets_under_way(verified.customer_id, verified.order_no):
            ours = any(ticket.summary.startswith(k.summary) for k in config.kinds.values())
            same_request = ticket.summary.startswith(kind.summary) or (
                not ours and ticket.category == kind.category
            )
            same_product = ticket.details.get(kind.fields["product"]) == str(product) or (
                known is not None and known.sku in _ticket_skus(ticket)
            )
            if same_request and same_product:
                return ticket
        return None

    def open_ticket_named_in(self, verified: VerifiedOrder, text: str) -> TicketView | None:
        """The customer's own ticket, still under way, that ``text`` is about: named by number
        ("工单T20261120-0001 怎么还没修好"), or the one ticket under way on the verified order
        when the message chases a request of its kind ("洗衣机报修好几天了还没修好").  A
        message about it belongs on it, not on a new ticket.  Only for a customer verified by
        an order: a phone alone proves nobody's identity."""
        if verified.order_no is None:
            return None
        for match in TICKET_NO_PATTERN.finditer(normalise_ticket_no(text)):
            for ticket in self.customer_tickets(verified, match.group(0)):
                if ticket.status not in SETTLED_TICKET_STATUSES:
                    return ticket
        under_way = self.tickets_under_way(verified.customer_id, verified.order_no)
        if len(under_way) != 1:
            return None  # none, or several: which one is meant is not for the bot to guess
        (ticket,) = under_way
        named = skus_mentioned(text)
        if named and not named & _ticket_skus(ticket):
            return None  # about another product on the order
        return ticket if load_request_config().follows_up(text, ticket.category) else None

    def _ticket(self, ticket_no: str) -> TicketView | None:
        """One ticket by number as customers type it; None for an unknown one."""
        try:
            return self.tickets.timeline(normalise_ticket_no(ticket_no))
        except UnknownTicket:
            return None
        except SQLAlchemyError as exc:
            raise ServiceUnavailable from exc

    def ticket_product(self, ticket_no: str) -> str | None:
        """The product a ticket is about, as its details name it (None if none does)."""
        ticket = self._ticket(ticket_no)
        if ticket is None:
            return None
        return next(
            (str(v) for v in ticket.details.values() if product_by_alias(str(v)) is not None),
            None,
        )

    def replaced_request(
        self, ticket_no: str, verified: VerifiedOrder, product: str | None
    ) -> bool:
        """Withdraw the request this chat opened just before for the same order and product
        when the customer changes it into another ("哎 还是换货吧" after the return ticket):
        True when it was withdrawn (not yet picked up)."""
        ticket = self._ticket(ticket_no)
        if ticket is None:
            return False
        same = ticket.order_no == verified.order_no and (
            not product or str(product) in ticket.details.values()
        )
        return same and self._withdraw(ticket, verified.customer_id) is Withdrawal.WITHDRAWN

    def withdraw_request(self, ticket_no: str, customer_id: int | None = None) -> Withdrawal:
        """Cancel a ticket the customer takes back ("我还是不退了", "把工单T… 取消了").  Only a
        ticket nobody has picked up yet is withdrawn.  With ``customer_id`` (a ticket named
        in a later chat) it must be that customer's: anyone else's reads as unknown."""
        ticket = self._ticket(ticket_no)
        if ticket is None:
            return Withdrawal.NOT_FOUND
        return self._withdraw(ticket, customer_id)

    def _withdraw(self, ticket: TicketView, customer_id: int | None) -> Withdrawal:
        if customer_id is not None and ticket.customer_id != customer_id:
            return Withdrawal.NOT_FOUND
        if ticket.status in SETTLED_TICKET_STATUSES:
            return Withdrawal.SETTLED
        if ticket.status != "opened":
            return Withdrawal.IN_HAND
        try:
            self.tickets.advance(
                ticket.ticket_no, "cancelled", "客户在对话中撤销", actor="customer"
            )
        except UnknownTicket:
            return Withdrawal.NOT_FOUND
        except InvalidTransition:  # picked up between the look and the change
            return Withdrawal.IN_HAND
        except SQLAlchemyError as error:
            raise ServiceUnavailable from error
        return Withdrawal.WITHDRAWN

    def add_to_request(self, ticket_no: str, words: str) -> bool:
        """Add what the customer said next to the ticket they opened in this chat ("他还骂人"
        after the complaint was taken down); False when it is closed or unknown."""
        if not words.strip():
            return False
        return self._note(ticket_no, f"客户补充：{words.strip()}")

    def _note(self, ticket_no: str, note: str) -> bool:
        """A customer-side note on a ticket; False when it is closed or unknown."""
        try:
            self.tickets.add_note(ticket_no, note, actor="customer")
        except (UnknownTicket, InvalidTransition):
            return False
        except SQLAlchemyError as error:
            raise ServiceUnavailable from error
        return True

    def open_complaint(self, verified: VerifiedOrder) -> TicketView | None:
        """The complaint still under way about the verified order, which a new complaint
        about it adds to (QA: three complaint tickets for one late fridge)."""
        if verified.order_no is None:
            return None
        under_way = self.tickets_under_way(verified.customer_id, verified.order_no)
        return next((ticket for ticket in under_way if ticket.category == "complaint"), None)

    def ticket_complained_about(self, verified: VerifiedOrder, text: str) -> TicketView | None:
        """The ticket under way a complaint is about: named by number, or the one ticket on
        the order that the complaint chases and whose product it names ("洗衣机报修一周了还没人
        来修").  "送货师傅态度恶劣" names no product: "师傅" alone ties it to no repair."""
        ticket = self.open_ticket_named_in(verified, text)
        if ticket is None:
            return None
        named = TICKET_NO_PATTERN.search(normalise_ticket_no(text)) is not None
        return ticket if named or skus_mentioned(text) & _ticket_skus(ticket) else None

    def note_complaint_about(self, ticket: TicketView, complaint_no: str) -> None:
        """A complaint opened about ``ticket`` is noted on it (and chases it when it is late),
        so whoever works either ticket sees the other."""
        if self._note(ticket.ticket_no, f"客户就此工单投诉，见投诉工单 {complaint_no}"):
            self.chase_if_overdue(ticket)

    def chase_if_overdue(self, ticket: TicketView) -> bool:
        """A customer asking about a ticket still open past a promised time: the chase goes
        on the ticket for the agent to see (True), so the customer is told it is late."""
        if ticket.status in SETTLED_TICKET_STATUSES or not self.tickets.sla_state(ticket).breached:
            return False
        return self.add_to_request(ticket.ticket_no, "已超过承诺时限，客户查询进度时催办")

    def chase(self, ticket: TicketView, hurried: bool) -> Chase:
        """A look at a ticket still open: past a promised time the chase goes on it (OVERDUE);
        within time, a customer who asks to hurry ("催一下") has that noted for the agent
        (NOTED); a plain look, or a ticket already settled, changes nothing."""
        if self.chase_if_overdue(ticket):
            return Chase.OVERDUE
        if hurried and ticket.status not in SETTLED_TICKET_STATUSES:
            if self.add_to_request(ticket.ticket_no, "客户催办，请尽快处理"):
                return Chase.NOTED
        return Chase.NONE

    def ticket_reply(self, ticket: TicketView) -> dict[str, str]:
        """Values for the utter_ticket_opened / utter_ticket_timeline responses."""
        events = "\n".join(
            f"· {format_time(e.created_at, self.policy)} {e.status_label}"
            + (f"：{e.note}" if e.note else "")
            for e in ticket.events
        )
        sla = self.tickets.sla_state(ticket)
        return {
            "ticket_id": ticket.ticket_no,
            "category_label": ticket.category_label,
            "status_label": ticket.status_label,
            "timeline": events,
            "first_response_due": self._deadline(
                ticket.deadlines.first_response, sla.first_response
            ),
            "plan_due": self._deadline(ticket.deadlines.plan, sla.plan),
            "close_due": self._deadline(ticket.deadlines.close, sla.close),
            "next_step": ticket.next_step_text,
        }

    def _deadline(self, due: datetime, state: SlaStatus) -> str:
        """A deadline as the customer reads it: the time, and how it went once it is decided
        ("11月21日 09:15（已超时）"): a past promise is not shown as if still open."""
        shown = format_time(due, self.policy)
        if state is SlaStatus.PENDING:
            return shown
        return f"{shown}（{self.policy.texts.sla_states[state.value]}）"

    def customer_tickets(
        self, verified: VerifiedOrder, ticket_no: str | None, asked: str = ""
    ) -> list[TicketView]:
        """The customer's tickets, those still under way first, newest first; one ticket when
        a number is given.  A question naming a kind of request ("我的报修到哪一步了") or a
        product shows those tickets (QA: three returns were shown and the overdue repair not).

        A ticket number that is unknown or belongs to someone else gives an empty list.
        """
        if ticket_no:
            ticket = self._ticket(ticket_no)
            return [ticket] if ticket and ticket.customer_id == verified.customer_id else []
        try:
            tickets = self.tickets.tickets_for_customer(verified.customer_id)
        except SQLAlchemyError as exc:
            raise ServiceUnavailable from exc
        named = load_request_config().categories_named(asked)
        tickets = [t for t in tickets if t.category in named] or tickets
        # "洗衣机维修工单到底什么时候有人来" shows the washer's tickets (QA: three newer ones
        # about other goods were shown and the washer's overdue repair was not).
        products = skus_mentioned(asked)
        tickets = [t for t in tickets if _ticket_skus(t) & products] or tickets
        newest_first = sorted(tickets, key=lambda t: t.created_at, reverse=True)
        return sorted(newest_first, key=lambda t: t.status in SETTLED_TICKET_STATUSES)

    def ticket_order_no(self, ticket_no: str) -> str | None:
        """The order a ticket was opened for (None for an unknown ticket or one without an
        order): a customer who knows the ticket number then needs only the order's phone."""
        ticket = self._ticket(ticket_no)
        return ticket.order_no if ticket else None

    def tickets_under_way(self, customer_id: int, order_no: str | None = None) -> list[TicketView]:
        """The customer's tickets not yet resolved, closed or cancelled, newest first — for
        ``order_no`` only when given."""
        try:
            tickets = self.tickets.tickets_for_customer(customer_id)
        except SQLAlchemyError as exc:
            raise ServiceUnavailable from exc
        return [
            ticket
            for ticket in tickets
            if ticket.status not in SETTLED_TICKET_STATUSES
            and (order_no is None or ticket.order_no == order_no)
        ]

    def has_open_ticket(self, customer_id: int, order_no: str | None = None) -> bool:
        """Whether the customer still waits on a ticket — for ``order_no`` when given: a VIP
        asking about another order is not asking for help with the open ticket."""
        return bool(self.tickets_under_way(customer_id, order_no))

    # -- orders ---------------------------------------------------------------------------
    def order_reply(self, order_no: str) -> dict[str, str]:
        """Values for utter_order_status (and the cancellation replies: ``amount``)."""
        order = self._order(order_no)
        items = "、".join(f"{i.product_name}×{i.quantity}" for i in order.items)
        carrier = (
            f"\n快递：{order.carrier} {order.tracking_no or ''}".rstrip() if order.carrier else ""
        )
        eta = ""
        if order.eta and order.delivery_status not in ("delivered", "cancelled"):
            eta = f"\n预计送达：{format_time(order.eta, self.policy)}"
        return {
            "order_id": order.order_no,
            "items": items,
            "delivery_label": self._delivery_label(order),
            "carrier_line": carrier,
            "eta_line": eta,
            "amount": f"{order.total_amount:.2f}",
        }

    def _order(self, order_no: str) -> OrderView:
        try:
            return self.orders.delivery_status(order_no)
        except UnknownOrder:
            raise
        except SQLAlchemyError as exc:
            raise ServiceUnavailable from exc

    def order_cancellation(self, order_no: str) -> OrderCancellation:
        """Whether the order can still be cancelled, and if not, why not."""
        return cancellation_state(self._order(order_no))

    def cancel_order(self, verified: VerifiedOrder) -> OrderCancellation:
        """Cancel the verified customer's order, if it has not shipped (the customer has
        confirmed); the money goes back the way it was paid."""
        if verified.order_no is None:
            raise UnknownOrder("")
        try:
            return self.orders.cancel(verified.order_no, verified.customer_id)
        except SQLAlchemyError as exc:
            raise ServiceUnavailable from exc

    def order_cancelled(self, order_no: str) -> bool:
        """Whether the order was cancelled: nothing of it can be returned, exchanged,
        installed or repaired."""
        return self._order(order_no).status == "cancelled"

    def undelivered_label(self, order_no: str) -> str | None:
        """How far a paid order still on its way has got ("运输中"); None once delivered
        (or cancelled, which is told apart by ``order_cancelled``)."""
        order = self._order(order_no)
        if order.delivery_status in ("delivered", "cancelled"):
            return None
        return self._delivery_label(order)

    def _delivery_label(self, order: OrderView) -> str:
        """The customer-facing name of the order's delivery status ("运输中")."""
        return self.policy.texts.delivery_statuses.get(order.delivery_status, order.delivery_status)

    def days_since_delivery(self, order_no: str) -> int | None:
        """Whole days since a delivered order arrived (its recorded arrival time), in the
        business time zone; None while it is on its way."""
        order = self._order(order_no)
        if order.delivery_status != "delivered" or order.eta is None:
            return None
        return (self.today() - order.eta.astimezone(self.policy.timezone).date()).days

    def expected_arrival(self, order_no: str) -> date | None:
        """The day (business time zone) an order not yet received can be expected: its
        promised day, but no earlier than today when out for delivery and tomorrow otherwise
        (a late order arrives when it arrives).  None once delivered or cancelled, or with
        no promise."""
        order = self._order(order_no)
        if order.eta is None or order.delivery_status in ("delivered", "cancelled"):
            return None
        soonest = self.today() + timedelta(days=order.delivery_status != "out_for_delivery")
        return max(order.eta.astimezone(self.policy.timezone).date(), soonest)

    def days_overdue(self, order_no: str) -> int | None:
        """Whole days an order still on its way is past its promised arrival (business time
        zone); None when it is not late, arrived, cancelled or has no promise."""
        order = self._order(order_no)
        if order.eta is None or order.delivery_status in ("delivered", "cancelled"):
            return None
        late = (self.today() - order.eta.astimezone(self.policy.timezone).date()).days
        return late if late > 0 else None

    def window_passed(self, window: str, days: int | None) -> bool:
        """Whether ``days`` since delivery is past the policy window named ``window``."""
        return days is not None and days > getattr(self.policy.return_windows, window)

    def today(self) -> date:
        """Today in the business time zone (appointments are local dates)."""
        return datetime.now(timezone.utc).astimezone(self.policy.timezone).date()


@lru_cache(maxsize=1)
def default_desk() -> ServiceDesk:
    """The process-wide desk used by the action server."""
    return ServiceDesk()
