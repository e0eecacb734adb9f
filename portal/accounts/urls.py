from django.urls import path

from . import views

app_name = "accounts"
urlpatterns = [
    path("2fa/enrol/", views.enrol, name="enrol"),
    path("2fa/backup-codes/", views.backup_codes, name="backup_codes"),
    path("invitation/<str:token>/", views.invitation, name="invitation"),
]
