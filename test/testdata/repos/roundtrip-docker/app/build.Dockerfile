# The Docker half of TestConvertRoundTrip (test/e2e/openshift/roundtrip_test.go):
# a BuildConfig builds this file (dockerStrategy.dockerfilePath, context
# directory app/) directly, and again as converted by ocbuild convert.
#
# The FROM names an image the sandbox does not hold: the BuildConfig builds on
# an approved base instead (dockerStrategy.from), so a conversion that lost
# `from` fails to pull. FLAVOUR is a build argument (dockerStrategy.buildArgs)
# and GREETING comes from the build environment (dockerStrategy.env); RUN
# writes both into the image, where a lost one shows as "unset".
FROM quay.io/ocbuild-example/upstream-base:latest
ARG FLAVOUR=unset
COPY greeting.txt /opt/app/greeting.txt
RUN printf 'flavour=%s\ngreeting=%s\n' "$FLAVOUR" "${GREETING:-unset}" > /opt/app/build-info.txt && \
    chmod 0640 /opt/app/build-info.txt
CMD ["cat", "/opt/app/build-info.txt"]
