"""The images API's routes (mounted at /image/ by portal/urls.py). Both /x and /x/ are served."""
from django.urls import re_path

from apps.images.api import views

IMAGE = r"(?P<image_id>[^/]+)"

urlpatterns = [
    re_path(r"^$", views.Versions.as_view()),
    re_path(r"^v2/?$", views.Versions.as_view()),
    re_path(r"^v2/schemas/(?P<name>image|images|member|members)/?$", views.Schema.as_view()),
    re_path(r"^v2/info/import/?$", views.ImportInfo.as_view()),
    re_path(r"^v2/info/stores/?$", views.StoresInfo.as_view()),
    re_path(r"^v2/images$", views.Images.as_view()),  # "images/" is an image with an empty id: 404
    re_path(rf"^v2/images/{IMAGE}/?$", views.ImageDetail.as_view()),
    re_path(rf"^v2/images/{IMAGE}/file/?$", views.ImageFile.as_view()),
    re_path(rf"^v2/images/{IMAGE}/stage/?$", views.ImageStage.as_view()),
    re_path(rf"^v2/images/{IMAGE}/import/?$", views.ImageImport.as_view()),
    re_path(rf"^v2/images/{IMAGE}/tasks/?$", views.ImageTasks.as_view()),
    re_path(rf"^v2/images/{IMAGE}/actions/(?P<action>deactivate|reactivate)/?$", views.ImageAction.as_view()),
    re_path(rf"^v2/images/{IMAGE}/tags/(?P<tag>[^/]+)/?$", views.ImageTag.as_view()),
    re_path(rf"^v2/images/{IMAGE}/members/?$", views.Members.as_view()),
    re_path(rf"^v2/images/{IMAGE}/members/(?P<member_id>[^/]+)/?$", views.MemberDetail.as_view()),
    re_path(rf"^v2/node/images/{IMAGE}/file/?$", views.NodeImageFile.as_view()),
    re_path(r"^.*$", views.NoSuchResource.as_view()),
]
