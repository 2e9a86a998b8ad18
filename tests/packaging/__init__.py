"""Tests of the distribution itself: fresh virtualenvs, real installs."""
