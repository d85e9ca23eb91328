from django.db import models


class Material(models.Model):
    name = models.CharField(max_length=200, unique=True)
    conductivity_w_mk = models.FloatField()
    density_kg_m3 = models.FloatField()

    class Meta:
        db_table = "materials"


class Construction(models.Model):
    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20)
    materials = models.ManyToManyField(Material, db_table="construction_materials")

    class Meta:
        db_table = "constructions"
