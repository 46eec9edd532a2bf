"""Normalisers for matching: what two spellings of the same thing have in common.

Each function is pure, tolerant of junk (returns None rather than raising) and cached, because the matcher
calls them for every candidate it scores. They lean on maintained libraries for what those know: anyascii
(transliteration), cleanco (legal-form suffixes), phonenumbers (E.164), python-stdnum (tax ids), tldextract
(registrable domain, from its bundled public-suffix snapshot: no network) and jellyfish (phonetic codes).
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Any

import jellyfish
import phonenumbers
import tldextract
from anyascii import anyascii
from cleanco import basename as cleanco_basename
from cleanco.clean import custom_basename as cleanco_custom_basename
from cleanco.clean import normalized as cleanco_normalized
from cleanco.clean import strip_punct as cleanco_strip_punct
from cleanco.clean import tail_removal_rexp as _CLEANCO_TAIL

# German umlauts fold the way Germans write them without: Müller → Mueller (anyascii alone gives Muller).
_GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"})
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_SPACES = re.compile(r"\s+")
_NON_DIGIT = re.compile(r"\D")
_DIGITS = re.compile(r"\d+")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")
_NON_ALNUM_CHAR = re.compile(r"[^a-z0-9]")
_ID_SEPARATORS = re.compile(r"[\s.\-/_]")
_POSTAL_SEPARATORS = re.compile(r"[\s\-]")

# Each normaliser that costs something is memoised per distinct value (names, phones and domains come back
# again and again as candidates). The caches are bounded: together at most about 12 MiB when full (measured:
# 10.7 MiB with every customer and resource normaliser's cache full).
CACHE_SIZE = 8192

# Legal forms cleanco leaves alone (long forms, some abbreviations), removed as whole trailing tokens.
_EXTRA_LEGAL_FORMS = frozenset(
    """
    aktiengesellschaft gesellschaft mbh gmbh ag kg kgaa ohg ug se sa sas sarl sàrl srl spa bv nv plc ltd limited
    llc llp lp inc incorporated corp corporation co company pty pte oy ab as asa aps kft sro zrt doo ooo pjsc ojsc
    jsc kk gk
    """.split()
)

# Words that say little about which company it is: dropped from the core name and never used as blocking keys.
COMPANY_STOPWORDS = frozenset(
    """
    the and of de der die das du la le les et und y e a an for to in on at
    group holding holdings company
    """.split()
)

# Abbreviations written either way.
_ABBREVIATIONS = {
    "intl": "international",
    "int": "international",
    "mfg": "manufacturing",
    "svcs": "services",
    "svc": "services",
    "tech": "technology",
    "technologies": "technology",
    "techn": "technology",
    "natl": "national",
    "assoc": "associates",
    "bros": "brothers",
    "mgmt": "management",
    "eng": "engineering",
    "dev": "development",
    "ind": "industries",
    "inds": "industries",
    "labs": "laboratories",
    "lab": "laboratories",
    "sys": "systems",
    "grp": "group",
    "hldgs": "holdings",
    "fin": "financial",
    "univ": "university",
    "ctr": "center",
    "centre": "center",
    "st": "saint",
    "&": "and",
    "+": "and",
}

# A small nickname table: nickname → the formal given name it stands for.
NICKNAMES = {
    "al": "albert", "alex": "alexander", "andy": "andrew", "drew": "andrew", "tony": "anthony", "ben": "benjamin",
    "bill": "william", "billy": "william", "will": "william", "willy": "william", "liam": "william",
    "bob": "robert", "bobby": "robert", "rob": "robert", "robbie": "robert", "bert": "robert",
    "chris": "christopher", "kit": "christopher", "dan": "daniel", "danny": "daniel", "dave": "david",
    "davy": "david", "ed": "edward", "eddie": "edward", "ted": "edward", "ned": "edward", "fred": "frederick",
    "freddie": "frederick", "greg": "gregory", "harry": "henry", "hank": "henry", "jack": "john", "johnny": "john",
    "jim": "james", "jimmy": "james", "jamie": "james", "joe": "joseph", "joey": "joseph", "josh": "joshua",
    "ken": "kenneth", "kenny": "kenneth", "larry": "lawrence", "matt": "matthew", "mike": "michael",
    "mickey": "michael", "mick": "michael", "nick": "nicholas", "nicky": "nicholas", "pat": "patrick",
    "pete": "peter", "phil": "philip", "ray": "raymond", "rick": "richard", "rich": "richard", "dick": "richard",
    "ron": "ronald", "sam": "samuel", "steve": "stephen", "steven": "stephen", "stu": "stuart", "tom": "thomas",
    "tommy": "thomas", "tim": "timothy", "vince": "vincent", "walt": "walter", "zach": "zachary",
    "abby": "abigail", "alex_f": "alexandra", "sandy": "alexandra", "ally": "alison", "angie": "angela",
    "becky": "rebecca", "beth": "elizabeth", "liz": "elizabeth", "lizzie": "elizabeth", "betty": "elizabeth",
    "eliza": "elizabeth", "cathy": "catherine", "kate": "catherine", "katie": "catherine", "kathy": "catherine",
    "katherine": "catherine", "kathryn": "catherine", "cindy": "cynthia", "debbie": "deborah", "deb": "deborah",
    "jenny": "jennifer", "jen": "jennifer", "jess": "jessica", "jessie": "jessica", "judy": "judith",
    "maggie": "margaret", "meg": "margaret", "peggy": "margaret", "marge": "margaret", "mandy": "amanda",
    "nancy": "ann", "annie": "ann", "anna": "ann", "anne": "ann", "patty": "patricia", "trish": "patricia",
    "sue": "susan", "susie": "susan", "suzy": "susan", "vicky": "victoria", "tori": "victoria",
    "sasha": "alexander", "misha": "mikhail", "dima": "dmitry", "dmitriy": "dmitry", "dmitri": "dmitry",
    "kolya": "nikolai", "volodya": "vladimir", "vova": "vladimir", "seryozha": "sergei", "sergey": "sergei",
    "pepe": "jose", "paco": "francisco", "pancho": "francisco", "nacho": "ignacio", "lupe": "guadalupe",
    "hans": "johannes", "sepp": "josef", "fritz": "friedrich", "jurgen": "juergen", "jorg": "joerg",
}  # fmt: skip


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value).strip()
    return text or None


@lru_cache(maxsize=CACHE_SIZE)
def ascii_fold(value: str) -> str:
    """Transliterate to ASCII, lower-case, punctuation to spaces, single spaces: 'Müller-Lüdenscheidt' → 'muller ludenscheidt'."""
    value = value.translate(_GERMAN)
    return _SPACES.sub(" ", _NON_ALNUM.sub(" ", anyascii(value).lower())).strip()


def simple_text(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    return ascii_fold(text) or None


@cache
def _legal_terms_by_last_word() -> dict[str, list[tuple[int, tuple[int, list[str]]]]]:
    """cleanco's default legal-form terms (its order kept by position), by their last word."""
    index: dict[str, list[tuple[int, tuple[int, list[str]]]]] = {}
    for position, term in enumerate(cleanco_basename.keywords["terms"]):
        index.setdefault(term[1][-1] if term[1] else "", []).append((position, term))
    return index


def _strip_tail(name: str) -> str:
    """cleanco's `strip_tail` (trailing characters other than word characters and dots off), with its pattern."""
    match = _CLEANCO_TAIL.search(name)
    return name[: match.start()] if match is not None else name


def legal_basename(name: str) -> str:
    """cleanco's `basename(name)` (legal-form suffixes off), asking it about the terms that could match only.

    cleanco tries each of its ~320 terms, in order, against the end of the name as it stands, removing the
    ones that match. A term can only match if its last word is one of the name's (normalised) words, since
    removing words only shortens the name; so passing cleanco just those terms, in the same order, gives the
    same result at a fraction of the cost (about 2 instead of 320 comparisons). With no such term the result is
    the name with its tail stripped and single-spaced; for ASCII text (cleanco's normalisation of which is its
    lower case) the suffix removal is cleanco's own loop, run here without normalising the text again."""
    tail = _strip_tail(name)
    ascii_text = tail.isascii()
    # cleanco's normalisation (NFKD, case folded, accents off) of ASCII text is its lower case
    normalised = tail.lower() if ascii_text else cleanco_normalized(tail)
    words = set(map(cleanco_strip_punct, normalised.split()))
    index = _legal_terms_by_last_word()
    found = [entry for word in (*words, "") for entry in index.get(word, ())]
    if not found:  # cleanco's custom_basename given no terms
        return _strip_tail(" ".join(tail.split()))
    found.sort(key=lambda entry: entry[0])
    terms = [term for _, term in found]
    if not ascii_text:
        return cleanco_custom_basename(name, terms)
    # cleanco's custom_basename(name, terms) (suffixes only), its normalised words being these
    nparts = tail.split()
    nnparts = list(map(cleanco_strip_punct, normalised.split()))
    for termsize, termparts in terms:
        if nnparts[-termsize:] == termparts:
            del nnparts[-termsize:]
            del nparts[-termsize:]
    return _strip_tail(" ".join(nparts))


@lru_cache(maxsize=CACHE_SIZE)
def _company_core(text: str) -> str:
    base = legal_basename(anyascii(text.translate(_GERMAN))) or text
    # cleanco keeps punctuation-separated forms like "S.A." at times; fold and strip trailing legal-form tokens too.
    tokens = ascii_fold(base.replace("&", " and ").replace("+", " and ")).split()
    tokens = [_ABBREVIATIONS.get(t, t) for t in tokens]
    while len(tokens) > 1 and tokens[-1] in _EXTRA_LEGAL_FORMS:
        tokens.pop()
    # join single letters written with dots or spaces: "i b m" → "ibm"
    joined: list[str] = []
    run = False
    for token in tokens:
        if len(token) == 1 and run:
            joined[-1] += token
        else:
            joined.append(token)
            run = len(token) == 1
    return " ".join(joined)


def company_name(value: Any) -> str | None:
    """'ACME Holdings GmbH & Co. KG' → 'acme holdings'; 'Intl. Business Machines Corp.' → 'international business machines'."""
    text = _text(value)
    if text is None:
        return None
    return _company_core(text) or None


def company_tokens(core: str | None) -> tuple[str, ...]:
    """The distinctive words of a core company name (stopwords out), in order."""
    if not core:
        return ()
    tokens = tuple(t for t in core.split() if t not in COMPANY_STOPWORDS)
    return tokens or tuple(core.split())


def acronym(core: str | None) -> str | None:
    """'international business machines' → 'ibm' (first letters of the words, stopwords out)."""
    tokens = [t for t in (core or "").split() if t not in {"and", "of", "the", "for"}]
    if len(tokens) < 2:
        return None
    return "".join(t[0] for t in tokens)


@lru_cache(maxsize=CACHE_SIZE)
def given_name(value: str) -> str:
    folded = ascii_fold(value)
    first = folded.split()[0] if folded else ""
    return NICKNAMES.get(first, first)


def person_first(value: Any) -> str | None:
    """The formal form of a given name: 'Bill' → 'william', 'Dmitriy' → 'dmitry' (only the first word)."""
    text = _text(value)
    if text is None:
        return None
    return given_name(text) or None


def person_last(value: Any) -> str | None:
    """A family name folded to ASCII without spaces or hyphens: 'van der Berg' → 'vanderberg'."""
    text = simple_text(value)
    return text.replace(" ", "") if text else None


@lru_cache(maxsize=CACHE_SIZE)
def phonetic(value: str) -> str:
    """A phonetic code (NYSIIS) so that 'Catherine' and 'Katherine' share a blocking key."""
    return jellyfish.nysiis(value) if value else ""


def phone_e164(value: Any, country: str | None = None) -> str | None:
    """'030 1234567' in DE → '+49301234567'; unparsable numbers keep their digits."""
    text = _text(value)
    if text is None:
        return None
    return _phone(text, (country or "").upper() or None)


@lru_cache(maxsize=CACHE_SIZE)
def _phone(text: str, country: str | None) -> str | None:
    try:
        number = phonenumbers.parse(text, country)
        if phonenumbers.is_possible_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    digits = _NON_DIGIT.sub("", text)
    return digits or None


@cache
def _extractor() -> tldextract.TLDExtract:
    # The bundled public-suffix snapshot only: never fetch a list over the network at run time. Private
    # suffixes count (acme.github.io is acme's, not GitHub's).
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True)


# Reserved for documentation and tests (RFC 2606, RFC 6761): there the host itself is the identity.
_RESERVED_DOMAINS = frozenset({"example.com", "example.net", "example.org"})
_RESERVED_TLDS = frozenset({"example", "test", "invalid", "localhost", "local"})


@lru_cache(maxsize=CACHE_SIZE)
def _registrable(host: str) -> str | None:
    parts = _extractor()(host)
    domain = parts.top_domain_under_public_suffix  # tldextract 5.3+: the registrable domain ("" when none)
    if not domain:
        return host.removeprefix("www.") if host.rsplit(".", 1)[-1] in _RESERVED_TLDS and "." in host else None
    if domain in _RESERVED_DOMAINS:
        return host.removeprefix("www.")
    return domain


def registrable_domain(value: Any) -> str | None:
    """'https://shop.acme.co.uk/about' → 'acme.co.uk'; 'info@acme.de' → 'acme.de'."""
    text = _text(value)
    if text is None:
        return None
    text = text.lower()
    if "@" in text and "://" not in text:
        text = text.rsplit("@", 1)[1]
    host = _SCHEME.sub("", text, count=1).split("/")[0].split(":")[0].strip(".")
    if not host:
        return None
    return _registrable(host)


# Mail providers whose domain says nothing about the organisation.
FREE_MAIL = frozenset(
    "gmail.com googlemail.com yahoo.com hotmail.com outlook.com live.com aol.com icloud.com gmx.de gmx.net web.de "
    "mail.ru yandex.ru protonmail.com proton.me".split()
)


def phone_tail(e164: str | None) -> str | None:
    """The last 8 digits of a phone number: the same line written with or without its country or trunk prefix."""
    if not e164:
        return None
    digits = _NON_DIGIT.sub("", e164)
    return digits[-8:] if len(digits) >= 6 else None


@lru_cache(maxsize=CACHE_SIZE)
def house_number(text: str | None) -> str | None:
    """The first number in an address line ('hauptstrasse 12a' → '12')."""
    found = _DIGITS.search(text or "")
    return found.group(0) if found else None


def email_parts(value: Any) -> tuple[str, str] | None:
    """'Jane.Doe+x@Mail.ACME.com' → ('janedoe', 'acme.com'): local part without dots/tags, registrable domain."""
    text = _text(value)
    if text is None or "@" not in text:
        return None
    local, _, domain = text.lower().rpartition("@")
    local = _NON_ALNUM_CHAR.sub("", local.split("+")[0])
    return (local, registrable_domain(domain) or domain) if local else None


def identifier(value: Any) -> str | None:
    """An identifier without spaces, dots, dashes or slashes, upper-case: 'ab-12 345' → 'AB12345'."""
    text = _text(value)
    if text is None:
        return None
    return _ID_SEPARATORS.sub("", anyascii(text)).upper() or None


def tax_id(value: Any, country: str | None) -> tuple[str, bool] | None:
    """(compact form, valid?) with python-stdnum's module for the country; the country prefix is dropped."""
    text = _text(value)
    if text is None:
        return None
    return _tax_id(text, (country or "").upper())


@lru_cache(maxsize=CACHE_SIZE)
def _tax_id(text: str, country: str) -> tuple[str, bool] | None:
    from canonical.validation import _tax_module  # the hub's own choice of stdnum module per country

    compact = identifier(text) or ""
    module = _tax_module(country) if country else None
    valid = False
    if module is not None:
        try:
            compact = module.compact(text).upper()
            valid = module.is_valid(text)
        except Exception:  # noqa: BLE001 - stdnum modules raise a variety of errors on junk
            valid = False
    prefix = "EL" if country == "GR" else country
    if prefix and compact.startswith(prefix) and len(compact) > len(prefix) + 3:
        compact = compact[len(prefix) :]
    return (compact, valid) if compact else None


def postal_code(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    return _POSTAL_SEPARATORS.sub("", text).upper() or None


def date_text(value: Any) -> str | None:
    text = _text(value)
    return text[:10] if text else None


def ref_id(value: Any) -> str | None:
    """A reference value as the matcher sees it: a golden id string (a parsed reference dict gives its golden_id)."""
    if isinstance(value, dict):
        value = value.get("golden_id")
    return str(value) if value else None


def caches_clear() -> None:
    """Empty the normalisers' memos (benchmarks start cold; tests that change what a normaliser reads)."""
    for fn in (ascii_fold, _company_core, given_name, phonetic, _phone, _registrable, house_number, _tax_id):
        fn.cache_clear()
