"""Input serializers check the shape of a steward action; output serializers describe what it did."""

from __future__ import annotations

from django.db.models import BigIntegerField
from rest_framework import serializers

from canonical.models import DataException
from stewardship.models import ReviewTask

# --- input ----------------------------------------------------------------------------------------------------


class MergeInputSerializer(serializers.Serializer):
    others = serializers.ListField(
        child=serializers.CharField(max_length=64), min_length=1, max_length=100, help_text="Golden ids to retire."
    )
    reason = serializers.CharField(max_length=2000)
    field_choices = serializers.DictField(
        required=False,
        help_text='Survivor values to pin: {field: value} or {field: {"from": golden_id}}.',
    )
    allow_not_a_match = serializers.BooleanField(default=False)


class SourceRecordRefField(serializers.JSONField):
    """A source record: its id, or {"system", "source_id"}."""

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if isinstance(data, bool):
            raise serializers.ValidationError('give a source record id or {"system", "source_id"}')
        if isinstance(data, int):
            return data
        if isinstance(data, str) and data.strip().isascii() and data.strip().isdigit():  # not '²': int() refuses it
            return int(data)
        if isinstance(data, dict) and set(data) == {"system", "source_id"}:
            if all(isinstance(v, str) and v.strip() for v in data.values()):
                return {"system": data["system"].strip(), "source_id": data["source_id"].strip()}
        raise serializers.ValidationError('give a source record id or {"system", "source_id"}')


class UnmergeInputSerializer(serializers.Serializer):
    source_record = SourceRecordRefField()
    reason = serializers.CharField(max_length=2000)


class ReviewMergeInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)
    candidates = serializers.ListField(child=serializers.CharField(max_length=64), required=False, min_length=1)
    survivor_id = serializers.UUIDField(required=False)
    field_choices = serializers.DictField(required=False)


class NotAMatchInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)
    candidates = serializers.ListField(child=serializers.CharField(max_length=64), required=False, min_length=1)


class DeferInputSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=2000)


class AssignInputSerializer(serializers.Serializer):
    assignee = serializers.CharField(max_length=150, allow_null=True, help_text="Username; null to unassign.")


class BulkAcceptInputSerializer(serializers.Serializer):
    tasks = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=BigIntegerField.MAX_BIGINT), min_length=1, max_length=500
    )
    reason = serializers.CharField(max_length=2000)


class RetryInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class ResolveInputSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class IgnoreInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


# --- output ---------------------------------------------------------------------------------------------------


class MergeResultSerializer(serializers.Serializer):
    merge_id = serializers.IntegerField()
    domain = serializers.CharField()
    survivor_id = serializers.UUIDField()
    retired_ids = serializers.ListField(child=serializers.UUIDField())
    survivor = serializers.DictField(help_text="The survivor's golden values after the merge.")


class UnmergeResultSerializer(serializers.Serializer):
    domain = serializers.CharField()
    source_record = serializers.IntegerField()
    golden_id = serializers.UUIDField(help_text="Where the source record went.")
    from_golden_id = serializers.UUIDField()
    restored = serializers.BooleanField(help_text="The golden record it had before a merge came back.")
    created = serializers.BooleanField()
    moved_references = serializers.ListField(child=serializers.DictField())


class ReviewTaskSerializer(serializers.ModelSerializer):
    assignee = serializers.CharField(source="assignee.username", allow_null=True, default=None)
    system = serializers.CharField(source="source_record.system_id", allow_null=True, default=None)
    source_id = serializers.CharField(source="source_record.source_id", allow_null=True, default=None)

    class Meta:
        model = ReviewTask
        fields = [
            "id",
            "domain",
            "golden_id",
            "source_record",
            "system",
            "source_id",
            "status",
            "priority",
            "score",
            "reason",
            "candidates",
            "assignee",
            "note",
            "created_by",
            "created_at",
            "decided_by",
            "decided_at",
        ]


class BulkAcceptResultSerializer(serializers.Serializer):
    results = serializers.ListField(child=serializers.DictField())


class DataExceptionSerializer(serializers.ModelSerializer):
    assignee = serializers.CharField(source="assignee.username", allow_null=True, default=None)
    system = serializers.CharField(source="system_id", allow_null=True)
    source_id = serializers.CharField(source="source_record.source_id", allow_null=True, default=None)

    class Meta:
        model = DataException
        fields = [
            "id",
            "kind",
            "status",
            "domain",
            "system",
            "source_record",
            "source_id",
            "golden_id",
            "message",
            "detail",
            "assignee",
            "resolution_note",
            "created_at",
            "updated_at",
            "resolved_at",
        ]


class RetryResultSerializer(serializers.Serializer):
    exception = DataExceptionSerializer()
    result = serializers.DictField(help_text="What the pipeline made of the record this time.")
