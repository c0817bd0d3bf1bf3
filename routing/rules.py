"""Routing rules: which rule matches a conversation, and why (a verdict for every condition).

Ordered by position, first match wins; a condition left empty matches everything. Keywords are
words or phrases (whole words, case-insensitive) or /regular expressions/.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from django.db.models import Count, Max
from django.utils import timezone

from conversations.models import Conversation, Direction, EntryKind, TimelineEntry
from customers.models import Tenant
from routing.models import BusinessHoursCondition, RoutingRule

# A short pattern cannot hide much catastrophic backtracking, and only the start of a long message
# is searched: together they bound the time one rule may take.
MAX_PATTERN_LENGTH = 200
MAX_SCANNED_CHARS = 4000


class KeywordError(ValueError):
    pass


@dataclass(frozen=True)
class RuleInput:
    """What rules look at, taken from a conversation or typed into the admin's rule tester."""

    channel: str = ""
    inbox_id: int | None = None
    text: str = ""
    tier: str = ""
    language: str = ""
    tags: tuple[str, ...] = ()
    at: datetime = field(default_factory=timezone.now)


@dataclass(frozen=True)
class Check:
    condition: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class RuleVerdict:
    rule: RoutingRule
    matched: bool
    checks: tuple[Check, ...]

    @property
    def reason(self) -> str:
        if not self.rule.is_active:
            return "inactive, skipped"
        if not self.checks:
            return "no conditions: matches everything"
        shown = self.checks if self.matched else [c for c in self.checks if not c.ok]
        return "; ".join(f"{c.condition}: {c.detail}" for c in shown)


@dataclass(frozen=True)
class RuleMatch:
    rule: RoutingRule | None
    verdicts: tuple[RuleVerdict, ...]


@lru_cache(maxsize=2048)
def compile_keyword(line: str) -> re.Pattern[str]:
    """One keyword line as a pattern; raises KeywordError for a bad or oversized expression."""
    line = line.strip()
    if len(line) > MAX_PATTERN_LENGTH:
        raise KeywordError(f"{line[:30]}… is longer than {MAX_PATTERN_LENGTH} characters.")
    if len(line) >= 2 and line.startswith("/") and line.endswith("/"):
        try:
            return re.compile(line[1:-1], re.IGNORECASE)
        except re.error as exc:
            raise KeywordError(f"{line} is not a valid regular expression: {exc}.") from exc
    words = [re.escape(word) for word in line.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


def keyword_lines(keywords: str) -> list[str]:
    return [line.strip() for line in (keywords or "").splitlines() if line.strip()]


def keywords_validate(keywords: str) -> list[str]:
    """Error messages for the admin form, one per bad line."""
    errors = []
    for line in keyword_lines(keywords):
        try:
            compile_keyword(line)
        except KeywordError as exc:
            errors.append(str(exc))
    return errors


def _language_matches(wanted: list[str], language: str) -> bool:
    # "pt" in a rule matches a customer's "pt-BR"; "pt-BR" in a rule matches only pt-BR.
    language = language.lower()
    primary = language.split("-")[0]
    return any(code.lower() in (language, primary) for code in wanted)


def _check_keywords(rule: RoutingRule, text: str) -> Check:
    scanned = text[:MAX_SCANNED_CHARS]
    for line in keyword_lines(rule.keywords):
        try:
            pattern = compile_keyword(line)
        except KeywordError:
            continue  # saved before validation existed: ignored, the admin form shows it
        found = pattern.search(scanned)
        if found:
            return Check("keywords", True, f"{line!r} found ({found.group(0)!r})")
    return Check("keywords", False, "none of the keywords in the first message")


def _check_business_hours(rule: RoutingRule, at: datetime) -> Check:
    from routing.business_hours import is_open

    calendar = rule.business_calendar or (rule.set_team.calendar if rule.set_team_id else None)
    open_now = is_open(calendar, at)
    wanted_open = rule.business_hours == BusinessHoursCondition.OPEN
    name = calendar.name if calendar is not None else "no calendar (always open)"
    state = "open" if open_now else "closed"
    return Check("business hours", open_now == wanted_open, f"{name} is {state}, rule wants {rule.business_hours}")


def rule_evaluate(rule: RoutingRule, data: RuleInput) -> RuleVerdict:
    """Every condition's verdict (the tester shows them all); inactive rules never match."""
    checks: list[Check] = []
    if rule.channels:
        ok = data.channel in rule.channels
        checks.append(Check("channel", ok, f"{data.channel or 'none'} {'in' if ok else 'not in'} {', '.join(rule.channels)}"))
    inbox_ids = {inbox.pk for inbox in rule.inboxes.all()}
    if inbox_ids:
        ok = data.inbox_id in inbox_ids
        checks.append(Check("inbox", ok, "inbox listed" if ok else "inbox not listed"))
    if keyword_lines(rule.keywords):
        checks.append(_check_keywords(rule, data.text))
    if rule.languages:
        ok = bool(data.language) and _language_matches(rule.languages, data.language)
        checks.append(Check("language", ok, f"{data.language or 'unknown'} {'in' if ok else 'not in'} {', '.join(rule.languages)}"))
    if rule.tiers:
        ok = data.tier in rule.tiers
        checks.append(Check("tier", ok, f"{data.tier or 'none'} {'in' if ok else 'not in'} {', '.join(rule.tiers)}"))
    if rule.tags:
        missing = [tag for tag in rule.tags if tag not in data.tags]
        checks.append(Check("tags", not missing, "all present" if not missing else f"missing {', '.join(missing)}"))
    if rule.business_hours != BusinessHoursCondition.ANY:
        checks.append(_check_business_hours(rule, data.at))
    matched = rule.is_active and all(check.ok for check in checks)
    return RuleVerdict(rule=rule, matched=matched, checks=tuple(checks))


def rules_for_tenant(tenant: Tenant, *, include_inactive: bool = False) -> list[RoutingRule]:
    rules = (
        RoutingRule.objects.for_tenant(tenant)
        .select_related("set_team__calendar", "business_calendar", "set_sla_policy")
        .prefetch_related("inboxes", "required_skills")
        .order_by("position", "id")
    )
    if not include_inactive:
        rules = rules.filter(is_active=True)
    return list(rules)


# Rules change rarely and are read for every routing decision: each worker process keeps a tenant's active
# rules for a few seconds, keyed by a one-row fingerprint (count, newest id, newest creation) so an added or
# removed rule is seen at once; an edited one at the latest after RULES_CACHE_SECONDS.
RULES_CACHE_SECONDS = 5.0
_rules_cache: dict[int, tuple[float, tuple, list[RoutingRule]]] = {}


def rules_for_routing(tenant: Tenant) -> list[RoutingRule]:
    fingerprint = tuple(
        RoutingRule.objects.for_tenant(tenant).filter(is_active=True)
        .aggregate(n=Count("id"), last=Max("id"), newest=Max("created_at")).values()
    )
    cached = _rules_cache.get(tenant.pk)
    now = time.monotonic()
    if cached is not None and cached[1] == fingerprint and now - cached[0] < RULES_CACHE_SECONDS:
        return cached[2]
    rules = rules_for_tenant(tenant)
    _rules_cache[tenant.pk] = (now, fingerprint, rules)
    return rules


def rules_cache_clear() -> None:
    _rules_cache.clear()


def rules_match(rules: list[RoutingRule], data: RuleInput, *, explain_all: bool = False) -> RuleMatch:
    """First active matching rule; with explain_all, a verdict for every rule (the admin tester)."""
    verdicts: list[RuleVerdict] = []
    winner = None
    for rule in rules:
        if not rule.is_active:
            verdicts.append(RuleVerdict(rule=rule, matched=False, checks=()))
            continue
        verdict = rule_evaluate(rule, data)
        verdicts.append(verdict)
        if verdict.matched and winner is None:
            winner = rule
            if not explain_all:
                break
    return RuleMatch(rule=winner, verdicts=tuple(verdicts))


def rule_actions_apply(rule: RoutingRule, conversation: Conversation) -> list[str]:
    """Set the matched rule's team, priority and tags on the conversation (in memory); the fields changed."""
    changed = []
    if rule.set_team_id and conversation.team_id != rule.set_team_id:
        conversation.team = rule.set_team
        changed.append("team")
    if rule.set_priority and conversation.priority != rule.set_priority:
        conversation.priority = rule.set_priority
        changed.append("priority")
    new_tags = [tag for tag in rule.add_tags if tag not in conversation.tags]
    if new_tags:
        conversation.tags = [*conversation.tags, *new_tags]
        changed.append("tags")
    return changed


def rule_input_for_conversation(conversation: Conversation, *, at: datetime | None = None) -> RuleInput:
    first_message = (
        TimelineEntry.objects.for_tenant(conversation.tenant_id)
        .filter(conversation=conversation, kind=EntryKind.MESSAGE, direction=Direction.INBOUND)
        .order_by("created_at", "id").values_list("body", flat=True).first()
    )
    text = "\n".join(part for part in (conversation.subject, first_message or "") if part)
    customer = conversation.customer
    return RuleInput(
        channel=conversation.first_channel,
        inbox_id=conversation.first_inbox_id,
        text=text,
        tier=customer.tier,
        language=customer.language,
        tags=tuple(conversation.tags),
        at=at or timezone.now(),
    )
