# vlm-batch pipeline (the Java app). Build from the repository root:
#   docker build -t vlm-batch .
# The image holds the app only: point jobs at an external inference server (inference.base_url:
# http://inference:8000 in docker-compose.yml) — the embedded vlmserve needs the Python venv,
# which lives in the inference image.

# ---- build -----------------------------------------------------------------------------------
FROM maven:3.9-eclipse-temurin-25 AS build
WORKDIR /src
# Dependencies first, so editing sources does not re-download them.
COPY pom.xml .
RUN mvn -B -ntp -q dependency:go-offline
COPY src/main src/main
RUN mvn -B -ntp -q -DskipTests -Dbuild.dir=/src/target package

# ---- run -------------------------------------------------------------------------------------
FROM eclipse-temurin:25-jre
# PostgreSQL (the embedded fallback) refuses to run as root, and nothing here needs root.
RUN useradd --create-home --uid 10001 vlm \
 && mkdir -p /data /app/out \
 && chown vlm:vlm /data /app/out
WORKDIR /app
COPY --from=build /src/target/vlm-batch.jar /app/vlm-batch.jar
COPY jobs /app/jobs
COPY samples /app/samples
USER vlm
# VLM_DATA_DIR: embedded database and logs (unused when SPRING_DATASOURCE_URL is set).
# SERVER_ADDRESS: serve listens on the container's interfaces so that a published port reaches it; that
# requires a login, so `serve` refuses to start until VLM_WEB_USER / VLM_WEB_PASSWORD are given.
ENV VLM_DATA_DIR=/data \
    SERVER_ADDRESS=0.0.0.0 \
    VLM_HOME=/app \
    JAVA_TOOL_OPTIONS="-XX:+UseParallelGC -XX:MaxRAMPercentage=75"
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["java", "-Dvlm.home=/app", "-jar", "/app/vlm-batch.jar"]
# ./vlm-batch serve: scheduler, web UI and REST API on 8080. For a one-off run instead:
#   docker run ... vlm-batch run jobs/my-job.yaml --date 2024-03-12
CMD ["serve"]
