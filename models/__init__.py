"""Pydantic schemas shared by workflows, activities and the starter."""
