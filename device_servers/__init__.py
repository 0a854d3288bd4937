"""Tango device servers of tangolab: one package per hardware unit or service."""
