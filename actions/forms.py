"""Form validation: identity before private data, then each answer checked as it arrives."""

from __future__ import annotations

import json
import re
from abc import abstractmethod
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, TypeVar

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecutionRejected, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.handoff import ACTION_ESCALATE
from actions.tickets import (
    FREE_TEXT_SLOTS,
    MAX_IDENTITY_FAILURES,
    REPLACES,
    UPSET_ANSWERS_COUNT,
    events_since_last_message,
    tell_order_status,
    ticket_a_detail_adds_to,
    ticket_opened_in_this_chat,
)
from bot.kb.search import Hit
from bot.kb.service import KnowledgeUnavailable, default_knowledge_service, looks_like_question
from bot.nlu.catalogue import bare_product
from bot.nlu.text import to_simplified
from bot.services.customers import (
    is_valid_order_no,
    mask_phone,
    normalise_order_no,
    normalise_phone,
)
from bot.services.desk import ServiceUnavailable, default_desk, load_request_config
from bot.services.orders import UnknownOrder
from bot.services.scheduling import (
    bookable,
    format_day,
    parse_date,
    parse_time_slot,
    time_slot_label,
)

T = TypeVar("T")
LEAVES_FOR_A_MESSAGE = frozenset(
    {
        "return_form",
        "exchange_form",
        "repair_form",
        "installation_form",
        "maintenance_form",
        "price_dispute_form",
    }
)
"""Request forms that a customer asking to leave a message leaves for the message form."""
CONTACT_ONLY_FORMS = frozenset({"message_form", "complaint_form"})
"""Forms a customer with no order number may finish with a phone to call back."""
MESSAGE_ANNOUNCING_INTENTS = frozenset({"leave_message"})
"""Messages that start the message form without being the message: "我要留言" announces
one.  Anything else that starts it (an upset "工单T… 两个礼拜了还没修好" while nobody is
online) is what the customer has to say, when it says what it is about."""
_NO_ORDER = re.compile(
    r"没有?(?:订单|单号)|无订单|不是订单|跟订单没关系|和订单无关|与订单无关|没在你们(?:这|家)?买"
    r"|(?:忘了|忘记了?|不记得|记不得|找不到|不知道)(?:订单|单号)"
    r"|(?:订单|单号)号?(?:忘了|忘记了|不记得了?|记不得了?|记不住|找不到了?)"
)
"""What a customer without an order number to give says when asked for one."""

MIN_DESCRIPTION_CHARS = 3
"""A description shorter than this says nothing ("坏了"); "风太小" and "不制冷" do."""
DIGRESSION_INTENTS = {
    "cancel",
    "ask_question",
    "request_human",
    "bot_challenge",
    "ask_capabilities",
    "out_of_scope",
    "greet",
    "goodbye",
    "thanks",
}
NOT_A_DESCRIPTION = ("date", "time_slot", "phone", "order_id", "ticket_id")
"""Entities that say when or which, never what happened: a reply made only of them is not a
fault description, an address or a complaint."""
_ORDER_NO_IN_TEXT = re.compile(r"SO\d{6,}", re.IGNORECASE)


def _has_no_order_number(text: str) -> bool:
    """The customer says they have no order number to give ("订单号忘了") and gives none."""
    return bool(_NO_ORDER.search(to_simplified(text))) and not _ORDER_NO_IN_TEXT.search(text)


_PHONE_IN_TEXT = re.compile(r"(?:\+?86)?1\d{10}")


def _cut(text: str, entities: list[dict[str, Any]]) -> str:
    """``text`` with the given entities' spans cut out."""
    kept = list(text)
    for entity in entities:
        start, end = entity.get("start"), entity.get("end")
        if isinstance(start, int) and isinstance(end, int):
            kept[start:end] = [""] * (end - start)
    return "".join(kept)


def words_beyond(text: str, entities: list[dict[str, Any]]) -> str:
    """What is left of ``text`` once the given entities' spans are cut out, without spaces and
    punctuation."""
    return re.sub(r"[\W_]+", "", _cut(text, entities))


def _without_identifiers(text: str, tracker: Tracker) -> str:
    """The latest message without its order and phone numbers: "我要报修 SO… 138… 冰箱咔咔
    响" describes the fault as "我要报修 冰箱咔咔响" (both numbers have their slots, and a phone
    number does not belong in a ticket's text).  A ticket number stays: it says which ticket
    the message is about."""
    latest = tracker.latest_message or {}
    if text != str(latest.get("text") or ""):
        return text
    numbers = [e for e in latest.get("entities") or [] if e.get("entity") in ("order_id", "phone")]
    if not numbers:
        return text
    cut = re.sub(r"\s*[,，、;；]?\s*(?:[,，、;；]\s*)+", "，", _cut(text, numbers))
    return re.sub(r"\s{2,}", " ", cut).strip(" ，,、;；")


def _details_only(text: str, tracker: Tracker) -> list[dict[str, Any]]:
    """The order, phone, ticket, date or time entities ``text`` (the latest message) is made
    of, when little else is left of it; empty when it says more than which or when."""
    latest = tracker.latest_message or {}
    if text != str(latest.get("text") or "").strip():
        return []
    found = [e for e in latest.get("entities") or [] if e.get("entity") in NOT_A_DESCRIPTION]
    if found and len(words_beyond(text, found)) < MIN_DESCRIPTION_CHARS:
        return found
    return []


def entity_value(tracker: Tracker, entity: str) -> str | None:
    """The first value of ``entity`` in the latest message, if any."""
    for found in tracker.latest_message.get("entities") or []:
        if found.get("entity") == entity and found.get("value"):
            return str(found["value"])
    return None


def _says_what_about(tracker: Tracker, text: str, intent: str | None) -> bool:
    """Whether a message that brought in a person (read by the NLU as ``intent``) says what
    it is about: a service request ("工单T… 两个礼拜了还没修好"), a named order, ticket or
    product, or words an article is about ("转人工，我的退款一直没到账") -- not a bare
    outburst ("人呢？？？")."""
    if intent not in DIGRESSION_INTENTS | {"complain", "nlu_fallback"}:
        return True
    if any(entity_value(tracker, name) for name in ("order_id", "ticket_id", "product")):
        return True
    try:
        return default_knowledge_service().answers_at_all(text)
    except KnowledgeUnavailable:
        return False


def _names_a_hazard(tracker: Tracker) -> bool:
    """Whether the latest message's sentiment (our NLU component) flags a safety risk."""
    sentiment = tracker.latest_message.get("sentiment") or {}
    return "safety" in (sentiment.get("reasons") or [])


def value_before_latest_message(tracker: Tracker, slot: str) -> Any:
    """What ``slot`` held before the latest message's slot extraction."""
    seen_user = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            seen_user = True
        elif seen_user and event.get("event") == "slot" and event.get("name") == slot:
            return event.get("value")
    return None


def _answer_text(tracker: Tracker, slot: str) -> str | None:
    """The latest message text when it answers ``slot`` (not a digression)."""
    if tracker.get_slot("requested_slot") != slot:
        return None
    if tracker.get_intent_of_latest_message() in DIGRESSION_INTENTS:
        return None
    if _escalated_since_last_message(tracker):
        return None  # the message brought in a person; it answers no question of the form
    return (tracker.latest_message.get("text") or "").strip() or None


def _escalated_since_last_message(tracker: Tracker) -> bool:
    """Whether ``action_escalate`` ran after the latest customer message (the form then runs
    again without it being an answer; Rasa hands the validation a copy of the events)."""
    return any(
        event.get("event") == "action" and event.get("name") == ACTION_ESCALATE
        for event in events_since_last_message(tracker)
    )


def _product_said_for(order_no: str, tracker: Tracker) -> str:
    """The product the customer named, latest first ("是SO… 那台电饭煲", or "电饭煲不加热了"
    that started the request), that is on ``order_no``; "" when none is."""
    mentions = [
        str(entity.get("value"))
        for event in reversed(tracker.events)
        if event.get("event") == "user"
        for entity in (event.get("parse_data") or {}).get("entities") or []
        if entity.get("entity") == "product" and entity.get("value")
    ]
    for mention in mentions:
        try:
            product = default_desk().match_product(order_no, mention)
        except (ServiceUnavailable, UnknownOrder):
            return ""
        if product:
            return product
    return ""


def _time_slot_said(value: Any, said: str) -> str | None:
    """The slot in the whole message when the value came from it: the NLU may take "8点" out
    of "晚上8点", and 8 o'clock alone is a morning."""
    return parse_time_slot(said if str(value) in said else str(value))


def _other_order_asked_about(tracker: Tracker) -> str | None:
    """The order number of a status question about another order asked while a request is
    under way for a verified one ("另外SO20261120009这单发货了吗")."""
    current = tracker.get_slot("verified_customer")
    if not current or not tracker.get_slot("requested_slot"):
        return None
    if tracker.get_intent_of_latest_message() != "query_order":
        return None
    match = _ORDER_NO_IN_TEXT.search(str(tracker.latest_message.get("text") or ""))
    other = normalise_order_no(match.group(0)) if match else None
    return other if other and other != current else None


def _tell_other_order(order_no: str, dispatcher: CollectingDispatcher, tracker: Tracker) -> None:
    """Its status when the phone checked in this chat is that order's phone too; otherwise
    it has to wait for its own check once this request is done."""
    desk = default_desk()
    try:
        same_customer = desk.verify_identity(order_no, tracker.get_slot("phone") or "")
    except ServiceUnavailable:
        dispatcher.utter_message(response="utter_service_unavailable")
        return
    if same_customer:
        tell_order_status(desk, order_no, dispatcher)
    else:
        dispatcher.utter_message(response="utter_other_order_later", order_no=order_no)


def _product_on_order(
    order_no: str, value: Any, dispatcher: CollectingDispatcher
) -> dict[str, Any]:
    """The order's product the customer means, or None with the order's products listed."""
    try:
        product = default_desk().match_product(order_no, str(value))
        names = "、".join(default_desk().order_products(order_no))
    except (ServiceUnavailable, UnknownOrder):
        return {"product": value}
    if product is None:
        dispatcher.utter_message(
            response="utter_unknown_product", order_products=names, order_no=order_no
        )
        return {"product": None}
    return {"product": product}


_SAYS_RECEIVED = re.compile(r"收到|到货|签收|拿到|装好|用了|在用|用上")
_SAYS_NOT_RECEIVED = re.compile(r"[没未]有?(?:收到|到货|签收|拿到|装|用)|还没到|不到")


def _says_received(text: str) -> bool:
    """The customer says goods the records show on their way are in their hands ("早就收到
    了 物流没更新而已"), not that they are still waiting ("还没收到")."""
    folded = to_simplified(text)
    return bool(_SAYS_RECEIVED.search(folded)) and not _SAYS_NOT_RECEIVED.search(folded)


_ADDRESS_MARKERS = re.compile(
    r"[省市区县镇乡村路街道巷弄号楼栋幢室院座层苑园厦]|单元|小区|公寓|广场|大厦|\d{2,}"
)
"""What any address a technician can find holds: a place name suffix or a house number."""

_DELIVERY_ADDRESS_WORDS = re.compile(
    r"(?:送货|收货|下单|订单)(?:的|那个|时的|时候的)?地址|原地址|原来的地址|老地址|地址不变"
    r"|同一个地址|这个地址|用这个就行|就用这个|这个就行"
    r"|^(?:对|是的?|好的?|嗯|可以|没错|就这里|就那里|一样|同上)[。！!,.，]*$"
)


_NOT_THE_DELIVERY_ADDRESS = re.compile(
    r"(?:不要|不是|不用|不在|别用|别送|不对|换个?|改个?)[^，,。；;！!]{0,4}(?:地址|这里|那里)"
    r"|新地址|搬家|搬了|地址(?:不对|错了|变了|改了)"
)
_ADDRESS_LEAD_IN = re.compile(
    r"^(?:(?:新的?|现在的?|正确的?|我的?)?地址(?:应该)?(?:是|为|在|改成|改为|换成)?"
    r"|(?:应该)?是|改成|改到|换成|送到|寄到|上门到|来)[:：\s]*"
)


MIN_ADDRESS_MARKERS = 4
"""Distinct address markers (市, 区, 路, 号, 楼, a house number…) that make a text an address
rather than a problem that mentions a place ("三楼卧室的空调不制冷" has two)."""


def _looks_like_address(text: str) -> bool:
    """Whether ``text`` is an address and nothing else much ("成都市武侯区天府大道1388号A座906")."""
    markers = {match.group(0) for match in _ADDRESS_MARKERS.finditer(to_simplified(text))}
    return len(markers) >= MIN_ADDRESS_MARKERS


def _points_to_delivery_address(text: str) -> bool:
    """The customer points to the delivery address offered as a button, in words
    ("就是送货地址", "送貨地址", "对") -- not away from it ("不要送货地址，送到我公司：…")."""
    folded = to_simplified(text)
    return bool(_DELIVERY_ADDRESS_WORDS.search(folded)) and not _NOT_THE_DELIVERY_ADDRESS.search(
        folded
    )


def _address_part(text: str) -> str:
    """The address in an answer that says more ("不是这个地址，我搬家了，新地址是北京市…" →
    "北京市…"): clauses before the first one that names a place are dropped, then what
    follows a colon, then lead-in words ("地址是", "送到")."""
    clauses = re.split(r"(?<=[，,。；;！!])", text)
    first = next((i for i, c in enumerate(clauses) if _ADDRESS_MARKERS.search(c)), None)
    if first is None:
        return text
    rest = "".join(clauses[first:]).strip()
    after_colon = re.split(r"[:：]", rest, maxsplit=1)[-1].strip()
    if _ADDRESS_MARKERS.search(after_colon):
        rest = after_colon
    stripped = _ADDRESS_LEAD_IN.sub("", rest, count=1)
    return stripped if _ADDRESS_MARKERS.search(stripped) else rest


def _answer_in_passing(question: str, sender_id: str, dispatcher: CollectingDispatcher) -> None:
    """A question asked at a form's question that takes it as an answer: the article's short
    answer (searched and logged like any other), or word that none was found."""
    try:
        hits = default_knowledge_service().answer(question, sender_id).hits
    except KnowledgeUnavailable:
        hits = ()
    if hits:
        dispatcher.utter_message(
            response="utter_kb_answer_in_passing", answer=hits[0].answer, title=hits[0].title
        )
    else:
        dispatcher.utter_message(response="utter_kb_not_found_in_passing")


def _read_order(order_no: str | None, read: Callable[[str], T], otherwise: T) -> T:
    """What ``read`` says of the verified order, or ``otherwise`` when there is none or the
    store cannot say (the question is then asked openly)."""
    if not order_no:
        return otherwise
    try:
        return read(order_no)
    except (ServiceUnavailable, UnknownOrder):
        return otherwise


def _only_product(order_no: str, dispatcher: CollectingDispatcher) -> dict[str, Any]:
    """The product of a one-product order, said back instead of asked: nothing to choose."""
    names = set(_read_order(order_no, default_desk().order_products, []))
    if len(names) != 1:
        return {}
    (product,) = names
    dispatcher.utter_message(response="utter_product_from_order", product=product)
    return {"product": product}


class ActionAskProduct(Action):
    """Which product, asked as a choice once the order is known: one tap on the order's
    products instead of typing a name that may not match ("冰箱" on a washing-machine order)."""

    def name(self) -> str:
        return "action_ask_product"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        order_no = tracker.get_slot("verified_customer")
        names = _read_order(order_no, default_desk().order_products, [])
        if not names:
            dispatcher.utter_message(response="utter_ask_product")
            return []
        buttons = [{"title": name, "payload": _inform_product(name)} for name in names]
        dispatcher.utter_message(
            response="utter_ask_product_on_order", order_no=order_no, buttons=buttons
        )
        return []


ORDER_NUMBER_INVITED = frozenset(
    {"utter_order_not_delivered", "utter_order_cancelled", "utter_order_id_where_to_find"}
)
"""Replies that already ask for an order number ("如果您说的是另一个订单，请直接发那个订单号",
"找到后发给我就行")."""


class ActionAskOrderId(Action):
    """The order question, unless the reply just sent already asks for another order number
    (an order still on its way or cancelled): the same question twice in a row read as if
    the verification had failed."""

    def name(self) -> str:
        return "action_ask_order_id"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        invited = any(
            (event.get("metadata") or {}).get("utter_action") in ORDER_NUMBER_INVITED
            for event in events_since_last_message(tracker)
            if event.get("event") == "bot"
        )
        text = str(tracker.latest_message.get("text") or "")
        if not invited and tracker.active_loop_name not in CONTACT_ONLY_FORMS:
            if _has_no_order_number(text):
                # "订单号忘了，手机139…，电视想退": where to find it, not the bare question.
                dispatcher.utter_message(response="utter_order_id_where_to_find")
                return []
        if not invited:
            tip = _self_help_for_fault(tracker)
            if tip is not None:
                dispatcher.utter_message(
                    response="utter_fault_self_help", answer=tip.answer, title=tip.title
                )
            dispatcher.utter_message(response="utter_ask_order_id")
        return []


def _self_help_for_fault(tracker: Tracker) -> Hit | None:
    """ "电饭煲煮饭夹生怎么办" opens a repair, and asks what to do meanwhile: the
    troubleshooting article that answers it comes first, then the repair goes on (QA: only the
    order number was asked).  Only as the repair form opens, for a question."""
    text = str(tracker.latest_message.get("text") or "")
    opened_now = any(
        event.get("event") == "active_loop" and event.get("name") == "repair_form"
        for event in events_since_last_message(tracker)
    )
    if not opened_now or not looks_like_question(text):
        return None
    try:
        found = default_knowledge_service().answer(text, tracker.sender_id, k=1)
    except KnowledgeUnavailable:
        return None
    best = found.hits[0] if found.hits else None
    return best if best is not None and best.scenario == "troubleshooting" else None


class ActionAskPhone(Action):
    """The phone question: the one on the order for the identity check, or, for a message
    or complaint left without an order number, a number to call back."""

    def name(self) -> str:
        return "action_ask_phone"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        contact_only = tracker.active_loop_name in CONTACT_ONLY_FORMS and tracker.get_slot(
            "without_order"
        )
        dispatcher.utter_message(
            response="utter_ask_contact_phone" if contact_only else "utter_ask_phone"
        )
        return []


class ActionAskAddress(Action):
    """Where the technician should come, with the order's delivery address as one tap (most
    visits are where the item was delivered); any other address can still be typed."""

    def name(self) -> str:
        return "action_ask_address"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        address = _read_order(
            tracker.get_slot("verified_customer"), default_desk().order_address, ""
        )
        if not address:
            dispatcher.utter_message(response="utter_ask_address")
            return []
        dispatcher.utter_message(
            response="utter_ask_address_on_order",
            address=address,
            buttons=[{"title": address, "payload": address}],
        )
        return []


def _ticket_order(ticket_no: str) -> str | None:
    """The order of the ticket the customer named, if the store knows one."""
    try:
        return default_desk().ticket_order_no(ticket_no)
    except ServiceUnavailable:
        return None


def _order_cancelled(order_no: str) -> bool:
    try:
        return default_desk().order_cancelled(order_no)
    except (ServiceUnavailable, UnknownOrder):
        return False


def _iso_day(value: Any) -> date | None:
    """A validated appointment day (the slot holds it as an ISO date); None otherwise."""
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _typed_phone(text: str) -> str | None:
    """The mobile number a customer typed, however spaced or dashed ("138 0013-8000")."""
    return normalise_phone(re.sub(r"[^\d+]", "", text))


def _inform_product(name: str) -> str:
    """A button payload that names the product as an entity: the NLU has nothing to guess."""
    return "/inform" + json.dumps({"product": name}, ensure_ascii=False)


class IdentityFormValidation(FormValidationAction):
    """Shared validation for every form: order number + phone on that order, then the rest."""

    @abstractmethod
    def name(self) -> str:
        """Each form's validation action is named ``validate_<form>``."""

    # Custom extraction: answers typed without the NLU spotting an entity still count, so the
    # customer gets a precise "format is wrong" reply instead of the question again.
    async def extract_order_id(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        asked = tracker.get_slot("requested_slot")
        if tracker.get_slot("order_id"):
            if asked in (None, "order_id"):
                return {}
            # "不对 订单号错了 是SO…" at any later question switches orders (validate_order_id
            # checks the new one); an order asked about in passing is a digression, no answer.
            match = _ORDER_NO_IN_TEXT.search(_answer_text(tracker, asked) or "")
            if match and normalise_order_no(match.group(0)) != tracker.get_slot("order_id"):
                return {"order_id": match.group(0)}
            return {}
        if not tracker.get_slot("requested_slot"):
            return self._ticket_order(tracker)
        text = _answer_text(tracker, "order_id")
        if text is None:
            return {}
        if self._says_no_order(tracker):
            phone = _typed_phone(text)
            return {"without_order": True, **({"phone": phone} if phone else {})}
        if _has_no_order_number(text):
            # "不记得订单号" where one is needed: where to find it, and the ways without one
            # (QA: "这个订单号格式好像不对" and the same question again).
            dispatcher.utter_message(response="utter_order_id_where_to_find")
            return {"order_id": None}
        match = _ORDER_NO_IN_TEXT.search(text)
        if match:
            return {"order_id": match.group(0)}
        refused = tracker.get_slot("undelivered_order")
        if refused and _says_received(text):
            # "我早就收到了 物流没更新而已": the order just refused as not delivered goes on,
            # with the customer's word noted on the ticket for the agent to check.
            return {"order_id": refused}
        phone = _typed_phone(text)
        if phone:  # the phone first: kept for the check once the order number comes
            return {"phone": phone}
        return {"order_id": text}

    @staticmethod
    def _ticket_order(tracker: Tracker) -> dict[str, Any]:
        """A ticket number in the message that starts the form ("T20261120-0001 到哪了"), or
        noted just before, stands for its order: only the phone on that order is asked for."""
        ticket_no = entity_value(tracker, "ticket_id") or tracker.get_slot("ticket_id")
        if not ticket_no or tracker.get_slot("verified_customer"):
            return {}
        order_no = _ticket_order(ticket_no)
        return {"order_id": order_no} if order_no else {}

    async def extract_phone(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = _answer_text(tracker, "phone")
        if text is None or tracker.get_slot("phone"):
            return {}
        match = _PHONE_IN_TEXT.search(text.replace(" ", "").replace("-", ""))
        if not match and _ORDER_NO_IN_TEXT.search(text):
            # "哦不对 是SO…" at the phone question corrects the order (extract_order_id); it
            # is no mistyped phone number.
            return {}
        return {"phone": match.group(0) if match else text}

    def validate_order_id(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        order_no = normalise_order_no(str(value))
        if not is_valid_order_no(order_no):
            ticket_no = entity_value(tracker, "ticket_id")
            ticket_order = _ticket_order(ticket_no) if ticket_no else None
            if ticket_order:  # the ticket's own order: only the phone on it is still needed
                return self.validate_order_id(ticket_order, dispatcher, tracker, domain)
            if ticket_no:  # a ticket number is kept (ticket_id slot); identity is still needed
                dispatcher.utter_message(
                    response="utter_ticket_no_needs_order", ticket_id=ticket_no
                )
            elif re.search(r"\d|so|订单|单号", order_no, re.IGNORECASE):
                dispatcher.utter_message(response="utter_invalid_order_id")
            # Words with no number at all ("我说了我要退货！！") are no mistyped order
            # number: the question is simply asked again.
            return {"order_id": None}
        verified = tracker.get_slot("verified_customer")
        if verified and verified != order_no:
            return self._switch_order(order_no, dispatcher, tracker, domain)
        phone = tracker.get_slot("phone")
        if not verified and phone and value_before_latest_message(tracker, "phone") == phone:
            # The phone came first ("13800138000", then the order number): check the pair
            # now, or the form would finish with an identity nobody checked.
            return {
                "order_id": order_no,
                **self._check_identity(order_no, phone, dispatcher, tracker, domain),
            }
        return {"order_id": order_no}

    def _switch_order(
        self, order_no: str, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Another order in the middle of a request ("不对 是SO…"): the product named for the
        old one goes; the phone already checked in this chat verifies the new one when it is
        that order's phone too, otherwise the phone on the new order is asked for."""
        switched: dict[str, Any] = {"order_id": order_no}
        if "product" in self.domain_slots(domain):
            switched["product"] = None
        phone = tracker.get_slot("phone")
        try:
            same_customer = bool(phone) and default_desk().verify_identity(order_no, phone)
        except ServiceUnavailable:
            same_customer = False
        if not same_customer:
            return {**switched, "phone": None, "verified_customer": None}
        said = _product_said_for(order_no, tracker)
        checked = self._check_identity(order_no, phone, dispatcher, tracker, domain, said)
        return {**switched, **checked}

    def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        phone = _typed_phone(str(value))
        if phone is None:
            dispatcher.utter_message(response="utter_invalid_phone")
            return {"phone": None}
        order_no = tracker.get_slot("order_id")
        if self._contact_only(tracker):
            return {"phone": phone}  # a number to call back, checked by whoever calls
        if not order_no:
            if tracker.get_slot("requested_slot") == "order_id":
                # Given when the order number was asked for: say it is kept, then ask again.
                dispatcher.utter_message(
                    response="utter_phone_kept_order_needed", masked_phone=mask_phone(phone)
                )
            return {"phone": phone}
        return self._check_identity(order_no, phone, dispatcher, tracker, domain)

    def _says_no_order(self, tracker: Tracker) -> bool:
        """The latest message says there is no order number to give, in a form that can do
        without one."""
        text = str(tracker.latest_message.get("text") or "")
        return self.form_name() in CONTACT_ONLY_FORMS and bool(
            _NO_ORDER.search(to_simplified(text))
        )

    def _contact_only(self, tracker: Tracker) -> bool:
        return self.form_name() in CONTACT_ONLY_FORMS and bool(tracker.get_slot("without_order"))

    def _locked(self, dispatcher: CollectingDispatcher) -> dict[str, Any]:
        """Too many failed checks: lookups stop; a message or complaint can still be left
        with a phone to call back (whoever calls checks who it is)."""
        if self.form_name() in CONTACT_ONLY_FORMS:
            dispatcher.utter_message(response="utter_identity_locked_contact_instead")
            return {"without_order": True, "order_id": None, "phone": None}
        dispatcher.utter_message(response="utter_identity_locked")
        return {"phone": None, "order_id": None, "requested_slot": None}

    async def get_validation_events(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        slot = tracker.get_slot("requested_slot")
        outburst = bool((tracker.latest_message.get("sentiment") or {}).get("escalate"))
        if (
            slot in FREE_TEXT_SLOTS - UPSET_ANSWERS_COUNT
            and self.form_name() != "message_form"
            and outburst
            and _escalated_since_last_message(tracker)
        ):
            # The outburst that brought in a person ("问这么多干嘛！！再拖我就打12315" at the
            # address question) also filled the open question's answer, and Rasa hands it
            # back here although action_escalate cleared it: it answers nothing.  A calm
            # answer that only ended a run of negative turns ("噪音大 想换一台新的") counts.
            return [SlotSet(slot, None)]
        other = _other_order_asked_about(tracker)
        if other:
            # "另外SO…这单发货了吗" in the middle of a request: answered, and the request goes
            # on where it was (its open question asked again).
            _tell_other_order(other, dispatcher, tracker)
            return [SlotSet(slot, None)] if slot in FREE_TEXT_SLOTS else []
        events = await super().get_validation_events(dispatcher, tracker, domain)
        if slot in FREE_TEXT_SLOTS and self._switched_order(events, tracker):
            # "不对 订单号错了 是SO…" at the reason question corrects the order; it is no reason.
            events.append(SlotSet(slot, None))
        return events

    @staticmethod
    def _switched_order(events: list[EventType], tracker: Tracker) -> bool:
        before = value_before_latest_message(tracker, "order_id")
        return any(
            event.get("name") == "order_id" and event.get("value") not in (None, before)
            for event in events
        ) and bool(before)

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        text = str(tracker.latest_message.get("text") or "")
        intent = tracker.get_intent_of_latest_message()
        if (
            intent == "leave_message"
            and self.form_name() in LEAVES_FOR_A_MESSAGE
            and tracker.get_slot("requested_slot")
        ):
            # 留言建工单 (offered where the order number cannot be found): the request gives
            # way to the message form (rules in data/rules.yml); QA: the order was asked again.
            return [ActionExecutionRejected(self.form_name())]
        if tracker.get_slot("requested_slot") and load_request_config().switch_asked(
            self.form_name(), intent, text
        ):
            # "还是换货吧": no answer to this form; rejected, so the rule for the switch runs.
            return [ActionExecutionRejected(self.form_name())]
        kind = self.form_name().removesuffix("_form")
        if not tracker.get_slot("requested_slot") and ticket_a_detail_adds_to(tracker, kind):
            # "对了 它盖子也合不上了" right after a ticket opened: no new request.  The form
            # ends at once; its ticket action adds the words to that ticket.
            return [SlotSet("requested_slot", None)]
        already = tracker.get_slot("without_order")
        events = await super().run(dispatcher, tracker, domain)
        if (
            not already
            and tracker.get_slot("without_order")
            and not any(event.get("name") == "without_order" for event in events)
        ):
            # Set by extract_order_id this turn, but not a required slot: rasa_sdk drops it
            # unless it is returned here.  Only then: a slot returned on every turn would
            # count as an answer and no digression would ever leave the form.
            events.append(SlotSet("without_order", True))
        return events

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        """Without an order number, a message or complaint needs only the phone; locked out
        of the identity check, any other form ends (the customer was told to ask for a
        person) instead of asking for the order number again."""
        if self._contact_only(tracker):
            return [slot for slot in domain_slots if slot != "order_id"]
        if int(tracker.get_slot("identity_failures") or 0) >= MAX_IDENTITY_FAILURES:
            return []
        return domain_slots

    def _still_on_its_way(self, order_no: str) -> str | None:
        """The delivery label of an order not yet received, for a form about received goods."""
        if self.form_name() not in load_request_config().needs_delivery:
            return None
        try:
            return default_desk().undelivered_label(order_no)
        except (ServiceUnavailable, UnknownOrder):
            return None

    @staticmethod
    def _received_anyway(order_no: str, tracker: Tracker) -> bool:
        """The customer says the order just refused as undelivered has arrived."""
        text = str(tracker.latest_message.get("text") or "")
        return tracker.get_slot("undelivered_order") == order_no and _says_received(text)

    def _check_identity(
        self,
        order_no: str,
        phone: str,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
        named_product: str | None = None,
    ) -> dict[str, Any]:
        """The order/phone pair against the store, with the failure count and lock-out.  The
        product to check against the order is ``named_product`` ("" for none), else the
        product slot's."""
        failures = int(tracker.get_slot("identity_failures") or 0)
        if failures >= MAX_IDENTITY_FAILURES:
            return self._locked(dispatcher)
        try:
            verified = default_desk().verify_identity(order_no, phone)
        except ServiceUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return {"phone": None}
        if verified is None:
            failures += 1
            if failures >= MAX_IDENTITY_FAILURES:
                return {**self._locked(dispatcher), "identity_failures": float(failures)}
            dispatcher.utter_message(response="utter_identity_not_found")
            # Most mismatches are a mistyped phone: the order number stays and only the phone
            # is asked again (a new order number replaces it).  Unknown order or wrong phone,
            # the reply is the same, so nothing says which orders exist.
            return {"order_id": order_no, "phone": None, "identity_failures": float(failures)}
        if "product" in self.domain_slots(domain) and _order_cancelled(verified.order_no):
            # Nothing of a cancelled order can be returned, installed or repaired: another
            # order number, or "算了".  The checked phone stays for that order.
            dispatcher.utter_message(response="utter_order_cancelled", order_no=verified.order_no)
            return {"order_id": None, "phone": phone, "identity_failures": 0.0}
        on_its_way = self._still_on_its_way(verified.order_no)
        if on_its_way and self._received_anyway(verified.order_no, tracker):
            delivery_note = f"客户称已收到（物流显示：{on_its_way}），请核实"
            on_its_way = None
        else:
            delivery_note = None
        if on_its_way:
            # Nothing received, nothing to return or repair yet: where it is, what can be
            # done instead, and room for another order number.
            dispatcher.utter_message(
                response="utter_order_not_delivered",
                order_no=verified.order_no,
                delivery_label=on_its_way,
            )
            return {
                "order_id": None,
                "phone": phone,
                "identity_failures": 0.0,
                "undelivered_order": verified.order_no,
            }
        try:
            open_ticket = default_desk().has_open_ticket(verified.customer_id, verified.order_no)
        except ServiceUnavailable:
            open_ticket = False
        result = {
            "phone": phone,
            "delivery_note": delivery_note,
            "undelivered_order": None,
            "verified_customer": verified.order_no,
            "identity_failures": 0.0,
            "customer_tier": verified.customer_tier,
            "has_open_ticket": open_ticket,
        }
        booked = _iso_day(tracker.get_slot("appointment_date"))
        if booked and self._before_arrival(
            verified.order_no, booked, dispatcher, "utter_booked_date_before_arrival"
        ):
            # "油烟机约明天上午来装": the day came with the opening message, before the order
            # was known; checked now, and asked again.
            result.update({"appointment_date": None, "time_slot": None})
        if "product" in self.domain_slots(domain):
            named = tracker.get_slot("product") if named_product is None else named_product
            if named:
                # Named before the order was known ("电饭煲坏了"): check it against the order.
                result.update(_product_on_order(verified.order_no, named, dispatcher))
            else:
                result.update(_only_product(verified.order_no, dispatcher))
        return result

    def validate_product(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        order_no = tracker.get_slot("verified_customer")
        if not order_no:
            return {"product": value}  # checked against the order once identity is known
        if order_no != value_before_latest_message(tracker, "verified_customer"):
            # Verified by this very message ("订单SO… 手机138… 电饭煲不想要了"), whose
            # identity check has matched the product already: said once, not twice.
            return {"product": tracker.get_slot("product")}
        return _product_on_order(order_no, value, dispatcher)

    async def extract_product(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        replaced = self._replaced_product(tracker)
        if replaced:
            return {"product": replaced}
        text = _answer_text(tracker, "product")
        if text is None or tracker.get_slot("product") or _ORDER_NO_IN_TEXT.search(text):
            return {}
        return {"product": text}

    def _replaced_product(self, tracker: Tracker) -> str | None:
        """ "哎 还是换货吧" just after the return ticket opened: the exchange is for the same
        goods (the return is withdrawn when it opens), so the product is not asked again."""
        kind = self.form_name().removesuffix("_form")
        other = REPLACES.get(kind)
        if not other or tracker.get_slot("requested_slot") or tracker.get_slot("product"):
            return None
        ticket_no, messages_since = ticket_opened_in_this_chat(tracker, other)
        if not ticket_no or messages_since > 1:
            return None  # only as the very next message, as a request taken back
        try:
            return default_desk().ticket_product(ticket_no)
        except ServiceUnavailable:
            return None

    def _opening_answer(self, slot: str, tracker: Tracker) -> dict[str, Any]:
        """``slot`` filled from the message that started the form, when that message already
        answers it ("洗衣机漏水了 想报修"; see opening_answers in config/service_requests.yml)."""
        if tracker.get_slot("requested_slot") or tracker.get_slot(slot):
            return {}  # the form is past its opening message (or has the answer)
        form = self.name().removeprefix("validate_")
        text = tracker.latest_message.get("text") or ""
        intent = tracker.get_intent_of_latest_message(skip_fallback_intent=False)
        if form == "message_form":
            # Started by an escalation while nobody is online, whatever the intent; only
            # words that announce a message or say nothing of substance are not the message.
            if intent in MESSAGE_ANNOUNCING_INTENTS:
                return {}
            if _names_a_hazard(tracker):
                # A safety risk ("热水器漏电 手碰到麻了一下") is the message however short.
                return {slot: _without_identifiers(text, tracker).strip()}
            if not _says_what_about(tracker, text, intent):
                return {}  # "人呢？？？回个话行不行": the form asks what it is about
        elif intent in DIGRESSION_INTENTS:
            return {}
        answer = load_request_config().opening_answer(form, _without_identifiers(text, tracker))
        return answer if slot in answer else {}

    async def extract_fault_description(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._opening_answer("fault_description", tracker)

    async def extract_request_reason(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        note = load_request_config().person_only_note
        if (
            note
            and self.form_name() == "message_form"
            and tracker.get_slot("requested_slot") == "request_reason"
            and tracker.get_intent_of_latest_message() in ("request_human", "affirm")
        ):
            # Asked what the message is, the customer asks for a person again, or just agrees
            # to wait ("好吧 那我等着"): that is the message (a person calls back), not a
            # question to ask a third time nor words to file as the problem.
            return {"request_reason": note}
        return self._opening_answer("request_reason", tracker)

    async def extract_complaint_detail(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._opening_answer("complaint_detail", tracker)

    def validate_appointment_date(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        today = default_desk().today()
        said = str(tracker.latest_message.get("text") or "")
        # The whole message first: the NLU may cut "下周六上午" into "下" and "周六", and
        # "周六" alone is this week's Saturday.
        day = (parse_date(said, today) if str(value) in said else None) or parse_date(
            str(value), today
        )
        if day is None or not bookable(day, today):
            if tracker.get_slot("requested_slot") != "appointment_date":
                # A date said in passing ("昨天开始就不制冷了") is context, not a booking.
                earlier = value_before_latest_message(tracker, "appointment_date")
                return {"appointment_date": earlier}
            dispatcher.utter_message(response="utter_invalid_date")
            return {"appointment_date": None}
        if self._before_arrival(tracker.get_slot("verified_customer"), day, dispatcher):
            return {"appointment_date": None}
        slot = _time_slot_said(value, said)
        result: dict[str, Any] = {"appointment_date": day.isoformat()}
        if slot and not tracker.get_slot("time_slot"):
            result["time_slot"] = time_slot_label(slot)
        return result

    def _before_arrival(
        self,
        order_no: str | None,
        day: date,
        dispatcher: CollectingDispatcher,
        response: str = "utter_date_before_arrival",
    ) -> bool:
        """An installation booked before the goods arrive (the technician would come to
        nothing) is refused, the first day after the promised arrival offered.  Forms about
        goods received never get here with goods still on their way (or the customer said
        they have them: "早就收到了 物流没更新而已")."""
        if self.form_name() in load_request_config().needs_delivery:
            return False
        arrival = _read_order(order_no, default_desk().expected_arrival, None)
        if arrival is None or day > arrival:
            return False
        dispatcher.utter_message(
            response=response,
            arrival=format_day(arrival),
            earliest=format_day(arrival + timedelta(days=1)),
        )
        return True

    def validate_time_slot(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        slot = _time_slot_said(value, str(tracker.latest_message.get("text") or ""))
        if slot is None:
            if tracker.get_slot("requested_slot") != "time_slot":
                # A stray word read as a time ("快点来", "便宜点") is no answer to a question
                # the form has not asked: keep what was there, say nothing.
                return {"time_slot": value_before_latest_message(tracker, "time_slot")}
            corrected_date = any(
                e.get("entity") == "date" for e in tracker.latest_message.get("entities", [])
            )
            if not corrected_date:  # "改成后天" corrects the date; it is no bad time slot
                dispatcher.utter_message(response="utter_invalid_time_slot")
            return {"time_slot": None}
        return {"time_slot": time_slot_label(slot)}

    @staticmethod
    def _validate_description(
        slot: str, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> dict[str, Any]:
        text = str(value or "").strip()
        if len(text) < MIN_DESCRIPTION_CHARS:
            dispatcher.utter_message(response="utter_text_too_short")
            return {slot: None}
        found = _details_only(text, tracker)
        if found:
            timed = any(e.get("entity") in ("date", "time_slot") for e in found)
            if not timed:
                response = "utter_text_too_short"
            elif slot == "address":
                response = "utter_time_noted_need_address"
            else:
                response = "utter_time_is_not_a_description"
            dispatcher.utter_message(response=response)
            return {slot: None}
        return {slot: text}

    def validate_fault_description(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        text = str(value or "").strip()
        if (
            "address" in self.domain_slots(domain)
            and not tracker.get_slot("address")
            and _looks_like_address(text)
        ):
            # "广州市天河区…68号…28楼" typed at "什么问题" (the customer ahead of the form):
            # kept as the address, and the problem asked for again.
            address = _address_part(text)
            dispatcher.utter_message(response="utter_address_noted_need_fault", address=address)
            return {"fault_description": None, "address": address}
        return self._validate_description("fault_description", value, dispatcher, tracker)

    def validate_address(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        """A place a technician can find: the delivery address when the customer points to it
        ("就是送货地址", "对"), otherwise text that names one (a road, a number, a building).
        "两台都装" or "保养要收费吗？" at this question is no address."""
        text = str(value or "").strip()
        delivery = _read_order(
            tracker.get_slot("verified_customer"), default_desk().order_address, ""
        )
        if delivery and (text == delivery or _points_to_delivery_address(text)):
            return {"address": delivery}
        text = _address_part(text)
        result = self._validate_description("address", text, dispatcher, tracker)
        if result["address"] and not _ADDRESS_MARKERS.search(text):
            if looks_like_question(text):
                _answer_in_passing(text, tracker.sender_id, dispatcher)
            dispatcher.utter_message(response="utter_address_unclear")
            return {"address": None}
        return result

    def validate_request_reason(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        text = str(value or "").strip()
        if text.startswith("/"):
            return {"request_reason": None}  # a button's payload ("/leave_message") says nothing
        if text and _details_only(text, tracker):
            # "13312345678" at the message question fills the phone; it is not the message.
            dispatcher.utter_message(response="utter_details_noted")
            return {"request_reason": None}
        if self._says_no_order(tracker):
            # "没有订单(号) …": no order number will be asked for; the rest, if any, is the
            # message.
            rest = len(_NO_ORDER.sub("", to_simplified(text))) >= 3
            return {"request_reason": text if rest else None, "without_order": True}
        return {"request_reason": text} if text else {"request_reason": None}

    def validate_complaint_detail(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        return self._validate_description("complaint_detail", value, dispatcher, tracker)

    def validate_complaint_expectation(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        """What the customer wants done, in any words ("道歉", "赔钱") -- but an order number
        and phone sent at this question are details, kept by their own slots, not the wish."""
        text = str(value or "").strip()
        if text and _details_only(text, tracker):
            dispatcher.utter_message(response="utter_details_noted")
            return {"complaint_expectation": None}
        return {"complaint_expectation": text or None}


def _form_validation(form: str) -> type[IdentityFormValidation]:
    """One validation action per form; they differ only in name."""
    return type(
        f"Validate{''.join(p.title() for p in form.split('_'))}",
        (IdentityFormValidation,),
        {"name": lambda self: f"validate_{form}", "__module__": __name__},
    )


FORMS = (
    "return_form",
    "exchange_form",
    "repair_form",
    "installation_form",
    "maintenance_form",
    "complaint_form",
    "price_dispute_form",
    "message_form",
    "ticket_status_form",
    "order_status_form",
    "order_cancel_form",
)
VALIDATIONS = [_form_validation(form) for form in FORMS]
VALIDATION_BY_FORM = dict(zip(FORMS, VALIDATIONS, strict=True))


def form_answer_taken_for_a_question(
    dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
) -> list[EventType] | None:
    """The answer to the form's open question that the NLU filed as a question.

    "音质一般" at "退货原因?" reads to the NLU like a product question; once the knowledge
    base has no article for it either and it carries no question marker, it is the reason,
    checked by the form's own validation; a bare product name at the product question is the
    product.  None when the message is a real digression."""
    slot, form = tracker.get_slot("requested_slot"), tracker.active_loop_name
    text = str(tracker.latest_message.get("text") or "").strip()
    product = bare_product(text) if slot == "product" and not text.startswith("/") else None
    if form in FORMS and product and not tracker.get_slot("kb_article"):
        # "滚筒洗衣机" at "是哪一件商品？" reads to the NLU like a question about it; a bare
        # product name is the answer, whatever articles mention it.
        validation = VALIDATION_BY_FORM[form]()
        result = validation.validate_product(product, dispatcher, tracker, domain)
        return [SlotSet(name, value) for name, value in result.items()]
    if form not in FORMS or slot not in FREE_TEXT_SLOTS or tracker.get_slot("kb_article"):
        return None
    if not text or text.startswith("/"):
        return None
    if looks_like_question(text) and form != "message_form":
        return None  # a real question; in the message form a question is the message
    # "就是送货地址" at the address question is the answer, though an article is about
    # changing a delivery address.
    pointed = slot == "address" and _points_to_delivery_address(text)
    if not pointed and default_knowledge_service().answers_at_all(text):
        return None
    validation = VALIDATION_BY_FORM[form]()
    result = getattr(validation, f"validate_{slot}")(text, dispatcher, tracker, domain)
    return [SlotSet(name, value) for name, value in result.items()]
