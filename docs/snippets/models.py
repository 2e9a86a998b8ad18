# shop/models.py
from django.db import models


class Order(models.Model):
    first_name = models.CharField(max_length=100)
    phone = models.CharField(max_length=20)  # E.164, e.g. +353861234567
    status = models.CharField(max_length=20, default="new")
    tracking_url = models.URLField(blank=True)
