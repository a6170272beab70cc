"""paycore's composition root: settings, database, migrations, CLI and demo."""
