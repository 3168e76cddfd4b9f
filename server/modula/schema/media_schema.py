"""The media root fields: upload (GraphQL multipart requests), browse, update and delete media items.
Permissions are those of the `media` resource (`create`, `read`, `update`, `delete`)."""

from __future__ import annotations

import datetime as dt
import enum
import functools

import strawberry
from strawberry.file_uploads import Upload

from modula.cms import media
from modula.errors import ModulaError
from modula.media.images import ImageSize, parse_sizes
from modula.media.storage import MediaStorage
from modula.schema.core_types import CoreInfo, Media
from modula.schema.filters import OrderDirection
from modula.schema.guards import require
from modula.schema.paging import page
from modula.uploads import UploadedFile


@strawberry.input(description="Media matching every condition given.")
class MediaWhere:
    folder: str | None = None
    mime_type: str | None = strawberry.field(default=None, description="Exact (image/png) or a family (image/*).")
    uploaded_by_id: int | None = None
    created_after: dt.datetime | None = strawberry.field(default=None, description="Inclusive.")
    created_before: dt.datetime | None = strawberry.field(default=None, description="Exclusive.")


@strawberry.enum
class MediaOrderField(enum.Enum):
    ID = "id"
    CREATED_AT = "created_at"
    NAME = "name"
    SIZE = "size"


@strawberry.input
class MediaOrderBy:
    field: MediaOrderField
    direction: OrderDirection = OrderDirection.ASC


@strawberry.input(description="One file of uploadMediaItems, with its own alt text and folder.")
class MediaUploadInput:
    file: Upload
    alt: str | None = None
    folder: str | None = None


@strawberry.type(description="What deleteMedia removed.")
class DeleteMediaResult:
    id: int
    cleared_content_ids: list[int] = strawberry.field(description="Content whose values named it (force: true).")


@functools.lru_cache(maxsize=8)
def _sizes(specs: tuple[str, ...]) -> tuple[ImageSize, ...]:
    return parse_sizes(specs)


def _storage(info: CoreInfo) -> MediaStorage:
    storage = info.context.media_storage
    if storage is None:
        raise ModulaError("UPLOADS_UNAVAILABLE", "this server has no media storage")
    return storage


def _new_media(value: object, alt: str | None, folder: str | None, path: tuple) -> media.NewMedia:
    if not isinstance(value, UploadedFile):
        raise ModulaError("INVALID_VALUE", "expected a file: send it in a GraphQL multipart request (multipart/form-data "
                          "with operations, map and the file, see graphql/README.md)", path)
    return media.NewMedia(filename=value.filename, blob=value.blob, head=value.head, declared_type=value.declared_type,
                          alt=alt, folder=folder, path=path)


async def _upload(info: CoreInfo, items: list[media.NewMedia]) -> list[Media]:
    require(info, "create", "media")
    settings, unit = info.context.settings, info.context.uploads
    rows = await media.upload_media(info.context.session, _storage(info), items, allowed_types=settings.media_types,
                                    sizes=_sizes(settings.media_sizes), uploader_id=info.context.viewer.user_id,
                                    written=unit.written if unit is not None else None)
    if unit is not None:
        unit.record(info.path.key)
    return [Media.from_row(row) for row in rows]


@strawberry.type
class MediaQuery:
    @strawberry.field(description="One media item by id (null if there is none).")
    async def media(self, info: CoreInfo, id: int) -> Media | None:
        require(info, "read", "media")
        row = await info.context.loaders.media.load(id)
        return Media.from_row(row) if row else None

    @strawberry.field(description="Media items, filtered and ordered (then by id).")
    async def media_items(self, info: CoreInfo, where: MediaWhere | None = None,
                          order_by: list[MediaOrderBy] | None = None, limit: int | None = None,
                          offset: int | None = None) -> list[Media]:
        require(info, "read", "media")
        size, start = page(info.context.settings, limit, offset)
        where = where or MediaWhere()
        found = media.MediaFilter(folder=where.folder, mime_type=where.mime_type, uploader_id=where.uploaded_by_id,
                                  created_after=where.created_after, created_before=where.created_before)
        order = [(item.field.value, item.direction == OrderDirection.DESC) for item in order_by or []]
        rows = await media.list_media(info.context.session, found, order_by=order, limit=size, offset=start)
        return [Media.from_row(row) for row in rows]


@strawberry.type
class MediaMutation:
    @strawberry.mutation(description="Upload one file (a GraphQL multipart request). Its type is sniffed from its "
                                     "bytes; images get their width, height and named sizes. Every upload field of "
                                     "one request is kept, or none.")
    async def upload_media(self, info: CoreInfo, file: Upload, alt: str | None = None,
                           folder: str | None = None) -> Media:
        return (await _upload(info, [_new_media(file, alt, folder, ("file",))]))[0]

    @strawberry.mutation(description="Upload a list of files, each with its own alt text and folder: all of them, "
                                     "or none (as with several uploadMedia fields in one request).")
    async def upload_media_items(self, info: CoreInfo, items: list[MediaUploadInput]) -> list[Media]:
        return await _upload(info, [_new_media(item.file, item.alt, item.folder, ("items", i, "file"))
                                    for i, item in enumerate(items)])

    @strawberry.mutation(description="Change a media item's alt text or folder (null clears one, leaving it out keeps it).")
    async def update_media(self, info: CoreInfo, id: int, alt: str | None = strawberry.UNSET,
                           folder: str | None = strawberry.UNSET) -> Media:
        require(info, "update", "media")
        row = await media.update_media(info.context.session, id,
                                       alt=media.KEEP if alt is strawberry.UNSET else alt,
                                       folder=media.KEEP if folder is strawberry.UNSET else folder)
        return Media.from_row(row)

    @strawberry.mutation(description="Delete a media item and its bytes. Refused while content uses it, naming "
                                     "that content; force: true clears those values.")
    async def delete_media(self, info: CoreInfo, id: int, force: bool = False) -> DeleteMediaResult:
        require(info, "delete", "media")
        cleared = await media.delete_media(info.context.session, _storage(info), id, force=force)
        return DeleteMediaResult(id=id, cleared_content_ids=cleared)
