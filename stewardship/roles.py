"""Who may do what in the stewardship workbench: steward groups per domain, auditors, administrators.

- `<Domain> stewards` (one group per domain: "Customer stewards", "Resource stewards", …) see and decide that
  domain's review tasks, exceptions and golden records. A customer steward cannot decide a resource task.
- `Auditors` see every queue, record and history, read-only.
- `MDM administrators` edit systems and ownership rules (with a change reason), and see everything read-only.
- Superusers may do everything.

The groups (with the model permissions the admin needs to show the pages) are created after every `migrate`
by `roles_sync`, idempotently. Membership is the only thing an administrator manages.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied

from canonical.models import Domain

AUDITORS = "Auditors"
ADMINISTRATORS = "MDM administrators"
DOMAIN_STEWARDS: dict[str, str] = {d.value: f"{d.label} stewards" for d in Domain}
_GROUP_DOMAIN = {name: domain for domain, name in DOMAIN_STEWARDS.items()}
_VIEW_APPS = ("canonical", "stewardship")
_ADMIN_MODELS = ("ownershiprule", "system")


def roles_sync() -> dict[str, Group]:
    """Create the role groups and give them their permissions (idempotent; extra permissions are kept)."""
    view = list(Permission.objects.filter(content_type__app_label__in=_VIEW_APPS, codename__startswith="view_"))
    edit = list(Permission.objects.filter(content_type__app_label="canonical", content_type__model__in=_ADMIN_MODELS))
    groups = {}
    for name in [*DOMAIN_STEWARDS.values(), AUDITORS, ADMINISTRATORS]:
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*view, *(edit if name == ADMINISTRATORS else []))
        groups[name] = group
    return groups


def roles_sync_on_migrate(sender, using="default", **kwargs) -> None:
    """post_migrate receiver. Creates the canonical and stewardship permissions first (idempotent): this
    receiver may run before auth's own for the same app, and the groups need them."""
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    for label in _VIEW_APPS:
        create_permissions(global_apps.get_app_config(label), verbosity=0, using=using)
    roles_sync()


def _group_names(user) -> frozenset[str]:
    """The user's group names, read once per user object (a request's user is one object)."""
    cached = getattr(user, "_mdm_group_names", None)
    if cached is None:
        if user is None or not user.is_authenticated or not user.is_active:
            cached = frozenset()
        else:
            cached = frozenset(user.groups.values_list("name", flat=True))
        try:
            user._mdm_group_names = cached
        except AttributeError:  # AnonymousUser and friends
            pass
    return cached


def _active_staff(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


def steward_domains(user) -> frozenset[str]:
    """The domains this user may decide in."""
    if not _active_staff(user):
        return frozenset()
    if user.is_superuser:
        return frozenset(DOMAIN_STEWARDS)
    return frozenset(_GROUP_DOMAIN[g] for g in _group_names(user) if g in _GROUP_DOMAIN)


def is_auditor(user) -> bool:
    return _active_staff(user) and AUDITORS in _group_names(user)


def is_administrator(user) -> bool:
    return _active_staff(user) and (user.is_superuser or ADMINISTRATORS in _group_names(user))


def viewable_domains(user) -> frozenset[str]:
    """Domains whose queues and records this user may see (auditors and administrators see all, read-only)."""
    if not _active_staff(user):
        return frozenset()
    if user.is_superuser or is_auditor(user) or is_administrator(user):
        return frozenset(DOMAIN_STEWARDS)
    return steward_domains(user)


def can_view(user, domain: str) -> bool:
    """`domain` may be "" (an exception not tied to a domain, e.g. a dead letter): any workbench user sees it."""
    allowed = viewable_domains(user)
    return bool(allowed) and (not domain or domain in allowed)


def can_decide(user, domain: str) -> bool:
    """Decide review tasks, merge/unmerge, override and handle exceptions of `domain` ("" = any steward)."""
    mine = steward_domains(user)
    return bool(mine) and (not domain or domain in mine)


def decide_refusal(user, domain: str) -> str:
    """Why `user` may not decide in `domain`, in words for the 403 page."""
    mine = sorted(steward_domains(user))
    label = Domain(domain).label.lower() if domain in DOMAIN_STEWARDS else domain
    if not mine:
        return f"You are not a steward: only members of “{DOMAIN_STEWARDS.get(domain, 'a steward group')}” decide {label} records."
    return (
        f"You steward {', '.join(Domain(d).label.lower() for d in mine)} records; {label} records are decided by "
        f"members of “{DOMAIN_STEWARDS.get(domain, domain)}”."
    )


def require_decide(user, domain: str) -> None:
    """Raise PermissionDenied (403) unless `user` may decide in `domain`: call before every steward service."""
    if not can_decide(user, domain):
        raise PermissionDenied(decide_refusal(user, domain))


def require_view(user, domain: str) -> None:
    if not can_view(user, domain):
        label = Domain(domain).label.lower() if domain in DOMAIN_STEWARDS else domain
        raise PermissionDenied(
            f"You may not see {label} records: ask an administrator for “{DOMAIN_STEWARDS.get(domain, AUDITORS)}”."
        )
