"""The sandbox speaks each system's API shape, and its fault switches do what they say."""

import requests

SF = "/crm/services/data/v60.0"


def test_crm_upsert_by_external_id_answers_201_then_200_then_300_for_duplicates(sandbox):
    url = f"{sandbox.url}{SF}/sobjects/Contract/Hub_Id__c/g-1"
    first = requests.patch(url, json={"Description": "v1"}, timeout=5)
    assert first.status_code == 201 and first.json()["created"] is True
    second = requests.patch(url, json={"Description": "v2"}, timeout=5)
    assert second.status_code == 200 and second.json() == {"id": first.json()["id"], "success": True, "errors": [],
                                                            "created": False}  # fmt: skip
    sandbox.admin("POST", "duplicate", json={"system": "crm", "object": "Contract", "ext_id": "g-1"})
    third = requests.patch(url, json={"Description": "v3"}, timeout=5)
    assert third.status_code == 300 and len(third.json()) == 2


def test_crm_composite_upsert_reports_per_record_results(sandbox):
    sandbox.faults("crm", item_fail={"g-2": {"code": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "times": None}})
    body = {"allOrNone": False, "records": [{"attributes": {"type": "Contract"}, "Hub_Id__c": f"g-{i}"}
                                            for i in range(1, 4)]}  # fmt: skip
    answer = requests.patch(f"{sandbox.url}{SF}/composite/sobjects/Contract/Hub_Id__c", json=body, timeout=5).json()
    assert [a["success"] for a in answer] == [True, False, True]
    assert answer[1]["errors"][0]["statusCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert sorted(r["ext_id"] for r in sandbox.records("crm", "Contract")) == ["g-1", "g-3"]


def test_crm_query_pages_with_next_records_url_and_query_all_shows_deleted(sandbox):
    ts = "2026-01-01T00:00:00.000Z"
    sandbox.put_many([{"system": "crm", "object": "Account", "data": {"Name": f"A{i}"}, "modified": ts}
                      for i in range(5)])  # fmt: skip
    gone = sandbox.records("crm", "Account")[0]
    sandbox.put("crm", "Account", {}, id=gone["id"], deleted=True, modified=ts)
    headers = {"Sforce-Query-Options": "batchSize=2"}
    q = {"q": "SELECT Id, Name FROM Account ORDER BY LastModifiedDate, Id"}
    first = requests.get(f"{sandbox.url}{SF}/queryAll", params=q, headers=headers, timeout=5).json()
    assert first["totalSize"] == 5 and first["done"] is False and len(first["records"]) == 2
    seen = [r["Id"] for r in first["records"]]
    page = first
    while not page["done"]:
        page = requests.get(f"{sandbox.url}/crm{page['nextRecordsUrl']}", headers=headers, timeout=5).json()
        seen += [r["Id"] for r in page["records"]]
    assert len(set(seen)) == 5
    live = requests.get(f"{sandbox.url}{SF}/query", params=q, timeout=5).json()
    assert live["totalSize"] == 4


def test_fault_switches_fail_rate_limit_and_slow_down_the_next_calls(sandbox):
    sandbox.faults("erp", fail_next=2, fail_status=503)
    url = f"{sandbox.url}/erp/services/rest/record/v1/customer/eid:g-9"
    assert [requests.put(url, json={}, timeout=5).status_code for _ in range(3)] == [503, 503, 204]
    sandbox.faults("erp", rate_limit_next=1, retry_after=4)
    limited = requests.put(url, json={}, timeout=5)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "4"


def test_drop_after_write_applies_the_write_but_never_answers(sandbox):
    sandbox.faults("psa", drop_after_write_next=1)
    url = f"{sandbox.url}/psa/api/v1/workspaces.json"
    try:
        requests.post(url, json={"workspace": {"title": "T", "external_id": "g-5"}}, timeout=5)
        raised = False
    except requests.ConnectionError:
        raised = True
    assert raised
    assert [r["ext_id"] for r in sandbox.records("psa", "workspaces")] == ["g-5"]
    again = requests.post(url, json={"workspace": {"title": "T", "external_id": "g-5"}}, timeout=5)
    assert again.status_code == 200
    assert len(sandbox.records("psa", "workspaces")) == 1


def test_bad_queries_are_a_clear_400(sandbox):
    answer = requests.get(f"{sandbox.url}{SF}/query", params={"q": "DELETE everything"}, timeout=5)
    assert answer.status_code == 400
    assert answer.json()[0]["errorCode"] == "MALFORMED_QUERY"
