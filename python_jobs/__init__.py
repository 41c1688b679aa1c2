"""Encore recommendations: extract, train, evaluate, validate and publish jobs."""
