"""The compute panels, mounted at /dashboard/compute/ (namespace "compute") by apps.py."""
from django.urls import path

from apps.compute import views

urlpatterns = [
    path("keypairs/", views.keypairs, name="keypairs"),
    path("keypairs/<str:name>/delete", views.keypair_delete, name="keypair_delete"),
    path("flavors/", views.flavors, name="flavors"),
    path("flavors/<str:flavor_id>/delete", views.flavor_delete, name="flavor_delete"),
]
