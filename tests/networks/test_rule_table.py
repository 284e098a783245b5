"""A security group's rules are the one live table inside the group's page (apps/dashboard/tables.py, its
url_args the group's id): sorted, filtered and keyset-paged by security_group_rule_list at a constant number
of queries whatever the number of rules; delete is a row's button and a bulk action, one service call per
row, each named in words ("ingress TCP 22 from 0.0.0.0/0") and each row's outcome told."""
from __future__ import annotations

import json
from typing import Any

import pytest
from django.db.models import F

from apps.networks import services
from apps.networks.models import SecurityGroup, SecurityGroupRule
from apps.networks.views import rule_words
from tests.dashboard.table_pages import table_page, walk, walk_back
from tests.networks.test_dashboard import D, Setup, env  # noqa: F401 (the fixture)

pytestmark = pytest.mark.django_db


def _grow(actor: Any, group: SecurityGroup, start: int, count: int) -> None:
    for i in range(start, start + count):  # ports out of creation order, some udp, a description on some
        services.security_group_rule_create(
            actor=actor, security_group_id=group.id, direction="ingress", protocol="udp" if i % 3 else "tcp",
            port_range_min=1000 + (i * 37) % 100, port_range_max=1000 + (i * 37) % 100 + i,
            remote_ip_prefix=f"10.{i}.0.0/16", description=f"rule {i:02d}" if i % 2 else "")


def _ids(pages: list) -> list[str]:
    return [i for p in pages for i in p.ids]


def test_rules_sort_filter_and_page_with_constant_queries(env: Setup) -> None:  # noqa: F811
    group = services.security_group_create(actor=env.demo, name="many")
    services.security_group_ensure_default_for(actor=env.demo)
    default = SecurityGroup.objects.get(project_id=env.demo_project.id, is_default=True)
    services.security_group_rule_create(actor=env.demo, security_group_id=group.id, direction="ingress",
                                        protocol="icmp", remote_group_id=default.id)  # a remote group, named
    theirs = services.security_group_create(actor=env.other, name="theirs")
    url = f"{D}/security-groups/{group.id}/"
    demo = env.client("demo")
    _grow(env.demo, group, 0, 30)
    demo.get(url)  # warm up (the session)
    first_small = table_page(demo, f"{url}?sort=port_range_min&dir=asc")
    _pages, small = walk(demo, first_small.next)
    _grow(env.demo, group, 30, 30)

    first = table_page(demo, f"{url}?sort=port_range_min&dir=asc")
    assert first.queries == first_small.queries and len(first.ids) == 25 and first.previous is None
    pages, large = walk(demo, first.next)
    rules = SecurityGroupRule.objects.filter(security_group=group)
    every = list(rules.order_by(F("port_range_min").asc(nulls_first=True), "id").values_list("id", flat=True))
    assert first.ids + _ids(pages) == every and len(every) == 63  # two egress rules of its own, the icmp one
    assert large == small and len(large) == 1, (small, large)
    assert not rules.filter(pk__in=SecurityGroupRule.objects.filter(security_group=theirs)).exists()
    back = walk_back(demo, pages[-1].previous)
    assert _ids(back) + pages[-1].ids == every
    # the rule in words: the row's name, its checkbox's label and its confirmation
    html = "".join(p.html for p in [first, *pages])
    assert "ingress ICMP from group default" in html and "group default</td>" in html
    assert 'data-name="egress any protocol to ::/0"' in html
    assert 'data-confirm="Delete rule ingress TCP 1000 from 10.0.0.0/16 of security group many?"' in html

    by_remote, counts = walk(demo, f"{url}?sort=remote_ip_prefix&dir=desc")
    wanted = list(rules.order_by(F("remote_ip_prefix").desc(nulls_last=True), "-id").values_list("id", flat=True))
    assert counts == large and _ids(by_remote) == wanted  # a null (a remote group, any) after every prefix
    assert set(table_page(demo, f"{url}?q=RULE+1").ids) == set(rules.filter(
        description__startswith="rule 1").values_list("id", flat=True))
    assert table_page(demo, f"{url}?q=udp&sort=direction").ids == list(
        rules.filter(protocol="udp").order_by("direction", "id").values_list("id", flat=True))[:25]
    assert 'data-live="security_group security_group_rule"' in first.html and 'id="rules-filter"' in first.html
    assert f'action="{url}rules/act"' in first.html
    assert table_page(demo, f"{url}?marker=gone&sort=port_range_min&dir=asc").ids == every[:25]


def test_rules_bulk_delete_each_row_told_in_words(env: Setup) -> None:  # noqa: F811
    group = services.security_group_create(actor=env.demo, name="web")
    ssh = services.security_group_rule_create(actor=env.demo, security_group_id=group.id, direction="ingress",
                                              protocol="tcp", port_range_min=22, port_range_max=22,
                                              remote_ip_prefix="0.0.0.0/0")
    http = services.security_group_rule_create(actor=env.demo, security_group_id=group.id, direction="ingress",
                                               protocol="tcp", port_range_min=80, port_range_max=80)
    assert rule_words(ssh) == "ingress TCP 22 from 0.0.0.0/0"
    services.security_group_ensure_default_for(actor=env.demo)
    other = SecurityGroup.objects.get(project_id=env.demo_project.id, is_default=True)
    elsewhere = SecurityGroupRule.objects.filter(security_group=other).first()
    theirs = services.security_group_create(actor=env.other, name="theirs")
    their_rule = SecurityGroupRule.objects.filter(security_group=theirs).first()
    demo = env.client("demo")
    act = f"{D}/security-groups/{group.id}/rules/act"
    answer = demo.post(act, {"action": "delete", "ids": [ssh.id, elsewhere.id, their_rule.id, "nope"]},
                       HTTP_ACCEPT="application/json")
    results = {r["id"]: r for r in json.loads(answer.content)["results"]}
    assert answer.status_code == 200 and list(results) == [ssh.id, elsewhere.id, their_rule.id, "nope"]
    assert results[ssh.id] == {"id": ssh.id, "ok": True, "message": "Deleted rule ingress TCP 22 from 0.0.0.0/0."}
    assert not any(results[i]["ok"] for i in (elsewhere.id, their_rule.id, "nope"))  # not this group's rules
    assert not SecurityGroupRule.objects.filter(pk=ssh.id).exists()
    assert SecurityGroupRule.objects.filter(pk__in=[elsewhere.id, their_rule.id]).count() == 2

    # a reader: refused by the service, row by row, and no checkbox nor button offered
    rita = env.client("rita")
    page = rita.get(f"{D}/security-groups/{group.id}/").content.decode()
    assert f'data-id="{http.id}"' in page and 'name="ids"' not in page and 'data-action="delete"' not in page
    refused = rita.post(act, {"action": "delete", "ids": [http.id]}, HTTP_ACCEPT="application/json")
    assert refused.json()["results"][0]["ok"] is False and SecurityGroupRule.objects.filter(pk=http.id).exists()
    # without script: a message and back; a row's own button; another project's group is a 404
    done = demo.post(f"{D}/security-groups/{group.id}/rules/{http.id}/delete")
    assert done.status_code == 302 and done["Location"] == f"{D}/security-groups/{group.id}/"
    assert not SecurityGroupRule.objects.filter(pk=http.id).exists()
    assert demo.post(f"{D}/security-groups/{theirs.id}/rules/act", {"action": "delete", "ids": [their_rule.id]}
                     ).status_code == 404
    assert demo.post(f"{D}/security-groups/{group.id}/rules/{their_rule.id}/delete").status_code == 404
