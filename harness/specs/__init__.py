"""Specs: the YAML files of experiments/ and the references they cite, loaded strictly and checked against the kinds."""
