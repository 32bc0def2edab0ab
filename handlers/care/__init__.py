"""Care: birthdays, dated care, surveys and win-back messages; dormant customers."""
