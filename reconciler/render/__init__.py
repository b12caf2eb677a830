"""Renderers: pure functions from desired state or plans to text, JSON, CSV, Markdown and ARM JSON."""
