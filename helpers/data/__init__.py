"""The datasets as the study preprocesses them, and the text corpus."""
