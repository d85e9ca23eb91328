from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.CreateModel(
            name="Material",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=200, unique=True)),
                ("conductivity_w_mk", models.FloatField()),
                ("density_kg_m3", models.FloatField()),
            ],
            options={"db_table": "materials"},
        ),
        migrations.CreateModel(
            name="Construction",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=200, unique=True)),
                ("kind", models.CharField(max_length=20)),
                ("materials", models.ManyToManyField(db_table="construction_materials", to="materials.material")),
            ],
            options={"db_table": "constructions"},
        ),
    ]
