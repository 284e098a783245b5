"""The S3 face with real boto3 against a live cloud (issue 13): EC2 credentials from the `openstack`
CLI, then buckets, put/get/list with pagination over 2,500 keys, multipart upload of 20 MiB, presigned
GET and PUT, copy, delete many, conditionals and ranges; and objects cross-read with Swift's API."""
from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import tarfile
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

pytestmark = pytest.mark.e2e


def _s3(cloud, user: str = "demo", project: str = "demo"):
    made = json.loads(cloud.openstack("ec2", "credentials", "create", "-f", "json", user=user, project=project).stdout)
    return boto3.client("s3", endpoint_url=f"{cloud.url}/s3", aws_access_key_id=made["access"],
                        aws_secret_access_key=made["secret"], region_name="RegionOne",
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                      max_pool_connections=16))


def _code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def s3(live_cloud):
    return _s3(live_cloud)


def _bucket(prefix: str = "b") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def test_buckets_and_objects(s3):
    bucket = _bucket()
    s3.create_bucket(Bucket=bucket)
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket=bucket)
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket=bucket)
    assert _code(exc) == "BucketAlreadyOwnedByYou"

    data = os.urandom(100_000)
    put = s3.put_object(Bucket=bucket, Key="dir/a b+c.bin", Body=data, ContentType="application/x-test",
                        Metadata={"colour": "blue"})
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="dir/a b+c.bin")
    assert got["Body"].read() == data
    assert got["ContentType"] == "application/x-test" and got["Metadata"] == {"colour": "blue"}
    head = s3.head_object(Bucket=bucket, Key="dir/a b+c.bin")
    assert head["ContentLength"] == len(data) and head["ETag"] == put["ETag"]
    # ranges and conditionals
    part = s3.get_object(Bucket=bucket, Key="dir/a b+c.bin", Range="bytes=10-19")
    assert part["Body"].read() == data[10:20] and part["ContentRange"] == f"bytes 10-19/{len(data)}"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="dir/a b+c.bin", IfMatch='"0000"')
    assert _code(exc) == "PreconditionFailed"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="dir/a b+c.bin", IfNoneMatch=put["ETag"])
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="dir/a b+c.bin", Range=f"bytes={len(data) + 5}-")
    assert _code(exc) == "InvalidRange"
    # missing things
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="nope")
    assert _code(exc) == "NoSuchKey"
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket=_bucket("missing"))
    assert _code(exc) == "NoSuchBucket"
    # copy, with and without new metadata
    copied = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "dir/a b+c.bin"})
    assert copied["CopyObjectResult"]["ETag"] == put["ETag"]
    assert s3.head_object(Bucket=bucket, Key="copy")["Metadata"] == {"colour": "blue"}
    s3.copy_object(Bucket=bucket, Key="copy2", CopySource=f"{bucket}/dir/a b+c.bin", MetadataDirective="REPLACE",
                   Metadata={"shape": "round"}, ContentType="text/plain")
    head = s3.head_object(Bucket=bucket, Key="copy2")
    assert head["Metadata"] == {"shape": "round"} and head["ContentType"] == "text/plain"
    assert s3.get_object(Bucket=bucket, Key="copy2")["Body"].read() == data
    # delete; deleting a missing key is quiet; a bucket with objects is not empty
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=bucket)
    assert _code(exc) == "BucketNotEmpty"
    for key in ("dir/a b+c.bin", "copy", "copy2", "never-there"):
        s3.delete_object(Bucket=bucket, Key=key)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    s3.delete_bucket(Bucket=bucket)
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket=bucket)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def _bulk_upload(cloud, container: str, keys: list[str]) -> None:
    """The objects ``keys`` (each holding its name) in ``container``, in one Swift bulk upload (a tar
    archive, ``?extract-archive=tar``) as demo: thousands of S3 PUTs would cost a minute of signing and
    requests for what the listing test does not look at."""
    from swiftclient import client as swift

    storage_url, token = swift.Connection(
        authurl=cloud.auth_url, user="demo", key=cloud.demo_password, auth_version="3",
        os_options={"project_name": "demo", "user_domain_name": "Default",
                    "project_domain_name": "Default"}).get_auth()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for key in keys:
            member = tarfile.TarInfo(key)
            member.size = len(key)
            tar.addfile(member, io.BytesIO(key.encode()))
    request = urllib.request.Request(f"{storage_url}/{container}?extract-archive=tar", data=archive.getvalue(),
                                     method="PUT", headers={"X-Auth-Token": token, "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        answer = json.loads(response.read())
    assert answer["Number Files Created"] == len(keys) and not answer["Errors"], answer


def test_list_2500_keys_with_pagination_prefix_delimiter_and_delete_many(live_cloud, s3):
    bucket = _bucket("many")
    s3.create_bucket(Bucket=bucket)
    keys = [f"k/{i:05d}" for i in range(2400)] + [f"d{i % 5}/x/{i}" for i in range(100)]
    # the 2,400 k/ keys come in through Swift's bulk upload, the 100 d*/ ones through boto3's put_object
    _bulk_upload(live_cloud, bucket, keys[:2400])
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=k.encode()), keys[2400:]))
    seen = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={
        "PageSize": 1000}) for o in page.get("Contents", [])]
    assert seen == sorted(keys) and len(seen) == 2500
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="k/", PaginationConfig={
        "PageSize": 700}))
    assert [p["KeyCount"] for p in pages] == [700, 700, 700, 300]
    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["d0/", "d1/", "d2/", "d3/", "d4/", "k/"]
    assert "Contents" not in top
    under = s3.list_objects_v2(Bucket=bucket, Prefix="d1/", Delimiter="/")
    assert [p["Prefix"] for p in under["CommonPrefixes"]] == ["d1/x/"]
    after = s3.list_objects_v2(Bucket=bucket, Prefix="k/", StartAfter="k/02397")
    assert [o["Key"] for o in after["Contents"]] == ["k/02398", "k/02399"]
    v1 = s3.list_objects(Bucket=bucket, Prefix="d", MaxKeys=30)
    assert v1["IsTruncated"] and len(v1["Contents"]) == 30
    # delete many, 1000 at a time
    for start in range(0, len(keys), 1000):
        batch = keys[start:start + 1000]
        result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch]})
        assert sorted(d["Key"] for d in result["Deleted"]) == sorted(batch) and not result.get("Errors")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    s3.delete_bucket(Bucket=bucket)


def test_multipart_upload_of_20_mib(s3):
    bucket = _bucket("mp")
    s3.create_bucket(Bucket=bucket)
    data = os.urandom(20 * 1024 * 1024 + 12345)
    # by hand: create, parts, list parts, complete
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big.bin", ContentType="application/x-big",
                                        Metadata={"k": "v"})["UploadId"]
    size = 8 * 1024 * 1024
    etags = []
    for number, start in enumerate(range(0, len(data), size), start=1):
        etags.append(s3.upload_part(Bucket=bucket, Key="big.bin", UploadId=upload, PartNumber=number,
                                    Body=data[start:start + size])["ETag"])
    listed = s3.list_parts(Bucket=bucket, Key="big.bin", UploadId=upload)
    assert [(p["PartNumber"], p["ETag"]) for p in listed["Parts"]] == list(enumerate(etags, start=1))
    assert listed["Parts"][0]["Size"] == size
    s3.complete_multipart_upload(Bucket=bucket, Key="big.bin", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, start=1)]})
    got = s3.get_object(Bucket=bucket, Key="big.bin")
    assert got["ContentLength"] == len(data) and got["ContentType"] == "application/x-big"
    assert got["Metadata"] == {"k": "v"}
    assert hashlib.sha256(got["Body"].read()).digest() == hashlib.sha256(data).digest()
    tail = s3.get_object(Bucket=bucket, Key="big.bin", Range=f"bytes={size - 5}-{size + 4}")["Body"].read()
    assert tail == data[size - 5:size + 5]
    assert [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(bucket)] == [bucket]
    # the transfer manager (upload_fileobj) as boto3 users call it
    s3.upload_fileobj(io.BytesIO(data), bucket, "managed.bin",
                      Config=boto3.s3.transfer.TransferConfig(multipart_threshold=5 * 1024 * 1024,
                                                               multipart_chunksize=5 * 1024 * 1024))
    out = io.BytesIO()
    s3.download_fileobj(bucket, "managed.bin", out)
    assert out.getvalue() == data
    # an aborted upload leaves nothing; a completed one with a wrong part etag is refused
    upload = s3.create_multipart_upload(Bucket=bucket, Key="gone")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="gone", UploadId=upload, PartNumber=1, Body=b"x" * 10)
    assert [(u["Key"], u["UploadId"]) for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])] == [
        ("gone", upload)]
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="gone", UploadId=upload, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}]})
    assert _code(exc) == "InvalidPart"
    s3.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=upload)
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket=bucket, Key="gone", UploadId=upload)
    assert _code(exc) == "NoSuchUpload"
    # deleting the object takes its parts along
    s3.delete_object(Bucket=bucket, Key="big.bin")
    s3.delete_object(Bucket=bucket, Key="managed.bin")
    s3.delete_bucket(Bucket=bucket)


def test_presigned_get_and_put(s3):
    bucket = _bucket("pre")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="file.txt", Body=b"presigned hello")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "file.txt"}, ExpiresIn=300)
    with urllib.request.urlopen(url) as response:
        assert response.read() == b"presigned hello"
    # a changed signature or another key under the same signature: refused
    for bad in (url.replace("file.txt", "other.txt"), url[:-1] + ("0" if url[-1] != "0" else "1")):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(bad)
        assert err.value.code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in err.value.read()
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "up.bin"}, ExpiresIn=300)
    request = urllib.request.Request(put_url, data=b"sent with a presigned URL", method="PUT")
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
    assert s3.get_object(Bucket=bucket, Key="up.bin")["Body"].read() == b"sent with a presigned URL"
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "file.txt"}, {"Key": "up.bin"}]})
    s3.delete_bucket(Bucket=bucket)


def test_cross_read_with_swift(live_cloud, s3):
    from swiftclient import client as swift

    bucket = _bucket("cross")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="from-s3.txt", Body=b"written by boto3", Metadata={"via": "s3"})
    conn = swift.Connection(authurl=live_cloud.auth_url, user="demo", key=live_cloud.demo_password,
                            os_options={"project_name": "demo", "user_domain_name": "Default",
                                        "project_domain_name": "Default"}, auth_version="3")
    headers, body = conn.get_object(bucket, "from-s3.txt")
    assert body == b"written by boto3" and headers["x-object-meta-via"] == "s3"
    conn.put_object(bucket, "from-swift.txt", b"written by swiftclient", headers={"X-Object-Meta-Via": "swift"})
    got = s3.get_object(Bucket=bucket, Key="from-swift.txt")
    assert got["Body"].read() == b"written by swiftclient" and got["Metadata"] == {"via": "swift"}
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]) == ["from-s3.txt",
                                                                                       "from-swift.txt"]
    assert bucket in [c["name"] for c in conn.get_account()[1]]
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "from-s3.txt"}, {"Key": "from-swift.txt"}]})
    conn.delete_container(bucket)


def test_other_projects_key_reaches_nothing(live_cloud, s3):
    bucket = _bucket("mine")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="secret", Body=b"demo's")
    admin = _s3(live_cloud, user="admin", project="admin")  # the admin's key acts in the admin project
    with pytest.raises(ClientError) as exc:
        admin.get_object(Bucket=bucket, Key="secret")
    assert _code(exc) == "NoSuchBucket"
    assert bucket not in [b["Name"] for b in admin.list_buckets()["Buckets"]]
    anonymous = urllib.request.Request(f"{live_cloud.url}/s3/{bucket}/secret")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(anonymous)
    assert err.value.code == 403
    s3.delete_object(Bucket=bucket, Key="secret")
    s3.delete_bucket(Bucket=bucket)
