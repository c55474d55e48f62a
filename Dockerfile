# Astro Runtime on Airflow 3.3. Confirm the tag carries Airflow 3.3.2 before a release:
#   docker run --rm astrocrpublic.azurecr.io/runtime:3.3-7 airflow version
# requirements.txt pins apache-airflow==3.3.2 so pip can never resolve by downgrading Airflow.
FROM astrocrpublic.azurecr.io/runtime:3.3-7
