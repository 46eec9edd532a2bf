import pytest
from django.contrib.auth import get_user_model

from canonical.matching.base import get_matcher


@pytest.fixture
def review_matcher(settings):
    """Use the name-review test matcher for the test (a real matcher over the MatchKey index)."""
    settings.MDM_MATCHER = "tests.stewardship.matchers.NameReviewMatcher"
    assert type(get_matcher()).__name__ == "NameReviewMatcher"
    return get_matcher()


@pytest.fixture
def steward(db):
    return get_user_model().objects.create_user("stella", password="pw", is_staff=True)


@pytest.fixture
def other_steward(db):
    return get_user_model().objects.create_user("sam", password="pw", is_staff=True)


@pytest.fixture
def eager_celery():
    """Run Celery tasks in-process for the test, even when REDIS_URL configures a broker."""
    from mdm.celery import app

    old = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = old
