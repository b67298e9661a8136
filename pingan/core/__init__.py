"""The ground every domain stands on: settings, the database, the work calendar and periods, texts in two languages, signed links, spreadsheets, workflows."""
