from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """WhiteNoise's compressed, hashed files, with ES module imports rewritten too.

    The console's JavaScript is a set of ES modules. Without the rewrite, ``console.<hash>.js``
    would import ``./batch.js`` by its plain name, which is cached for a short time only and can
    be a different version than the page right after a deploy.
    """

    support_js_module_import_aggregation = True
